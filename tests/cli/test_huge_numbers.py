"""A number in exponent form too large (or too fine) to write out, in an answer or a flow
parameter: refused by field on the command line and from Python, as a Slack form refuses
it ("Enter a smaller number"), without being written out in plain digits or stored so.

It was expanded: ``1e10000000`` for a ``Decimal`` field became a 10 MB audit record,
``1e1000000000`` a MemoryError, and a ``Decimal`` field without bounds took 1e1000000 as
a megabyte of digits."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner
from pydantic import Field

from signoff.bot.cli.main import cli as signoff
from signoff.bot.forms.submissions import MAX_DIGITS as FORM_MAX_DIGITS
from signoff.engine import Engine, InputInvalid, flow, pause_flow_run
from signoff.engine.input import RunInput
from signoff.engine.numbers import MAX_DIGITS
from tests.cli.test_cli import Cli
from tests.engine.test_approvals import run_in_thread, waiting_run

#: far more than an audit record of a short answer and its refusal takes
SMALL = 2_000


class Priced(RunInput):
    approve: bool
    price: Decimal = Field(ge=0, le=1000)


@flow(name="huge-priced", approvers=["U0BOB"])
def huge_priced() -> Priced:
    return pause_flow_run(Priced, timeout=60)


class Amounts(RunInput):
    d: Decimal
    tenth: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    debt: Decimal = Decimal(0)
    ratio: float = 0.0


@flow(name="huge-unbounded")
def huge_unbounded() -> Amounts:
    return pause_flow_run(Amounts, timeout=60)


def invoke(database_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(signoff, ["--database-url", database_url, *args])
    return result.exit_code, result.stdout, result.stderr


def last_audit_line(database_url: str) -> str:
    code, out, err = invoke(database_url, "audit", "export")
    assert code == 0, err
    return out.splitlines()[-1]


def test_an_answer_past_a_decimal_fields_bound_is_refused_by_name_and_audited_small(
    engine: Engine, database_url: str
) -> None:
    box = run_in_thread(huge_priced)
    run_id = waiting_run(engine, "huge-priced")
    answer = '{"approve": true, "price": 1e10000000}'
    code, _, err = invoke(
        database_url, "runs", "resume", run_id, "--input", answer, "--as", "U0BOB"
    )
    assert code == 1
    assert "price: must be a smaller number (at most 4,300 digits before the point)" in err
    # The refusal is audited with the number as sent, not its ten million digits.
    record = last_audit_line(database_url)
    assert len(record) < SMALL
    assert json.loads(record)["action"] == "answer.invalid"
    assert "1E+10000000" in record
    code, out, _ = invoke(database_url, "runs", "show", run_id)
    assert code == 0 and len(out) < 10 * SMALL
    # Still waiting: an ordinary answer goes through.
    answer = '{"approve": true, "price": 12.50}'
    code, _, err = invoke(
        database_url, "runs", "resume", run_id, "--input", answer, "--as", "U0BOB"
    )
    assert code == 0, err
    box["thread"].join(10)
    assert box["result"] == Priced(approve=True, price=Decimal("12.50"))


def test_an_exponent_of_a_billion_is_refused_at_once(engine: Engine, database_url: str) -> None:
    # It was written out as a gigabyte of digits: "error: unexpected MemoryError".
    run_in_thread(huge_priced)
    run_id = waiting_run(engine, "huge-priced")
    for sent in ("1e1000000000", "-1e-1000000000"):
        answer = f'{{"approve": true, "price": {sent}}}'
        code, _, err = invoke(
            database_url, "runs", "resume", run_id, "--input", answer, "--as", "U0BOB"
        )
        assert code == 1
        assert "price: must " in err and "MemoryError" not in err
        assert len(last_audit_line(database_url)) < SMALL
    engine.cancel(run_id, "U0BOB")


def test_a_decimal_field_without_bounds_refuses_an_absurd_exponent_from_every_entry(
    engine: Engine, database_url: str
) -> None:
    box = run_in_thread(huge_unbounded)
    run_id = waiting_run(engine, "huge-unbounded")
    code, _, err = invoke(database_url, "runs", "resume", run_id, "--input", '{"d": 1e1000000}')
    assert code == 1
    assert "d: must be a smaller number" in err
    fine = '{"d": 1, "tenth": 1e-5000}'
    _, _, err = invoke(database_url, "runs", "resume", run_id, "--input", fine)
    assert "tenth: must have at most 4,300 decimal places" in err
    for value in ("1e1000000", Decimal("1e1000000"), Decimal("-1e1000000")):
        with pytest.raises(InputInvalid) as refused:
            engine.resume(run_id, {"d": value}, "U0BOB")
        assert refused.value.errors == {
            "d": "must be a smaller number (at most 4,300 digits before the point)"
        }
    assert all(len(json.dumps(r.data)) < SMALL for r in engine.audit_trail(run_id))
    # Ordinary numbers, as JSON numbers, still reach the flow as typed.
    answer = '{"d": 1e3, "tenth": 0.1, "cost": 12.50, "debt": -5, "ratio": 1e3}'
    code, _, err = invoke(database_url, "runs", "resume", run_id, "--input", answer)
    assert code == 0, err
    box["thread"].join(10)
    assert box["result"] == Amounts(
        d=Decimal(1000), tenth=Decimal("0.1"), cost=Decimal("12.50"), debt=Decimal(-5), ratio=1e3
    )
    code, out, _ = invoke(database_url, "runs", "show", run_id)
    assert code == 0 and len(out) < 10 * SMALL


def test_the_form_and_the_engine_refuse_the_same_numbers() -> None:
    assert FORM_MAX_DIGITS == MAX_DIGITS


HUGE_FLOWS = """
from decimal import Decimal

from signoff.engine import flow


@flow(name="huge-param")
def huge_param(price: Decimal) -> str:
    return f"{price:f}"
"""


def test_a_flow_parameter_in_an_absurd_exponent_is_refused_by_name(
    cli: Cli, engine: Engine
) -> None:
    flows = cli.tmp_path / "huge_flows.py"
    flows.write_text(HUGE_FLOWS)
    done = cli("run", "huge-param", "--flows", str(flows), "--param", "price=1e10000000")
    assert done.returncode != 0
    assert "price: must be a smaller number" in done.stderr
    done = cli("run", "huge-param", "--flows", str(flows), "--param", "price=-1e-10000000")
    assert done.returncode != 0
    assert "price: must have at most 4,300 decimal places" in done.stderr
    assert not engine.list_runs(flow_name="huge-param")
    ok = cli("run", "huge-param", "--flows", str(flows), "--param", "price=1e3")
    assert ok.returncode == 0, ok.stderr
