"""Stored timer jobs name their functions by Signoff's import name, ``signoff``.

Jobs keep the import path of the function they call (``engine.timers:expire_due_pauses``,
``bot.slack.reminders:remind``); Signoff's modules are now ``signoff.engine`` and
``signoff.bot``, so a job stored before would call a module that is no more (or, worse, a
project's own ``bot``). Each job's pickled state is rewritten; nothing else in it changes.
The oldest reminder path, ``bot.reminders:remind``, goes to where reminders live now.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: paths that moved, besides gaining the ``signoff.`` prefix
MOVED = {"bot.reminders:remind": "bot.slack.reminders:remind"}


def _upgraded(func: str) -> str:
    func = MOVED.get(func, func)
    if func.startswith(("engine.", "bot.")):
        return f"signoff.{func}"
    return func


def _downgraded(func: str) -> str:
    return func.removeprefix("signoff.") if func.startswith("signoff.") else func


def _rewrite(change: Callable[[str], str]) -> None:
    jobs = sa.table(
        "apscheduler_jobs", sa.column("id", sa.Unicode), sa.column("job_state", sa.LargeBinary)
    )
    bind = op.get_bind()
    for job_id, blob in bind.execute(sa.select(jobs.c.id, jobs.c.job_state)).all():
        # APScheduler's own format: a pickled dict whose "func" is a "module:name" string.
        state = pickle.loads(blob)
        func = state.get("func")
        if isinstance(func, str) and change(func) != func:
            state["func"] = change(func)
            bind.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(job_state=pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
            )


def upgrade() -> None:
    _rewrite(_upgraded)


def downgrade() -> None:
    _rewrite(_downgraded)
