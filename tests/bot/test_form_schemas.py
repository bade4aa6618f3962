"""A form carries its schema in its sealed metadata when it fits, so any replica can read it."""

from __future__ import annotations

import secrets

import pytest
from pydantic import Field, create_model

from signoff.bot.slack.form_schemas import MAX_CARRIED, carried, uncarried
from signoff.bot.slack.sealing import MAX_METADATA, Sealer
from tests.bot.test_modal_elements import ShirtOrder


def test_a_schema_comes_back_from_the_form_exactly() -> None:
    schema = ShirtOrder.model_json_schema()
    text = carried(schema)
    assert text is not None
    assert uncarried(text) == schema
    # With the run, the key, where the form came from and the seal, it fits Slack's limit.
    meta = {"run": "r" * 36, "key": "k" * 64, "channel": "C" * 11, "ts": "1" * 17}
    assert len(Sealer("s").seal({**meta, "schema": text})) <= MAX_METADATA


def test_a_schema_too_large_to_carry_is_not_carried() -> None:
    fields = {f"field_{i}": (str, Field(description=secrets.token_hex(40))) for i in range(60)}
    schema = create_model("Large", **fields).model_json_schema()  # type: ignore[call-overload]
    assert carried(schema) is None
    assert MAX_CARRIED < MAX_METADATA


@pytest.mark.parametrize("text", ["not base64!", "aGVsbG8=", "eJzLSM3JyQcABiwCFQ=="])
def test_text_that_is_not_a_carried_schema_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="not a carried schema"):
        uncarried(text)
