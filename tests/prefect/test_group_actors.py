"""On Prefect, as on the engine, a Slack user group's id is refused where one person acts:
before, ``Actor("S0SRE")`` answered as one person and a decision could be handed to a
group, which then stood in the trail as who decided."""

from __future__ import annotations

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import Actor, PauseStatus
from signoff.bot.backends.prefect import PrefectBackend
from signoff.bot.errors import NotAPerson
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect"), pytest.mark.timeout(900)]

CAROL = Actor("U0CAROL")


def test_a_group_id_neither_acts_nor_is_handed_a_decision(prefect_backend: PrefectBackend) -> None:
    with pytest.raises(NotAPerson) as refused:
        Actor("S0SRE")
    assert str(refused.value) == (
        "actor id 'S0SRE' is a Slack user group's id, not one person's: rules may name a "
        "group, but a person acts (name one of its members)"
    )
    # An operator's name in capitals is no group's id (Slack's ids hold a digit).
    assert Actor("SAM").id == "SAM"

    backend = prefect_backend
    run = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    try:
        pause = wait_for(
            lambda: (p := backend.waiting_pause(run.id)) and p.status is PauseStatus.WAITING and p,
            timeout=120,
            what="the run to wait for input",
        )
        with pytest.raises(NotAPerson) as handed:
            backend.reassign(run.id, "S0SRE", by=CAROL, key=pause.key)
        assert str(handed.value).startswith(f"run {run.id}: the id to reassign to 'S0SRE' is")
        after = backend.get_pause(run.id, pause.key)
        assert after is not None and after.delegations == ()
        assert "pause.reassigned" not in [r.action for r in backend.audit_trail(run.id)]
    finally:
        backend.cancel(run.id, by=CAROL)
