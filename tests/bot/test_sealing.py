"""Form metadata sealed by the app comes back as it was; anything else is refused by
``TamperedMetadata``, never an exception of another kind (which the app answers with 500)."""

from __future__ import annotations

import pytest

from signoff.bot.errors import TamperedMetadata
from signoff.bot.slack.sealing import Sealer

SEALER = Sealer("signing-secret")


def test_sealed_metadata_comes_back_as_it_was() -> None:
    data = {"run": "r42", "key": "1", "note": "café ✓"}
    assert SEALER.open(SEALER.seal(data)) == data


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.replace("r42", "r43"),  # another run
        lambda s: Sealer("other-secret").seal({"run": "r42"}),  # another app's seal
        lambda s: "v1.é." + s.split(".", 2)[2],  # a seal beyond ASCII
        lambda s: s + "\ud800",  # a lone surrogate, as JSON can carry one
        lambda s: "v2" + s[2:],
        lambda s: "",
    ],
)
def test_edited_metadata_is_refused_as_tampered(edit) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TamperedMetadata):
        SEALER.open(edit(SEALER.seal({"run": "r42"})))
