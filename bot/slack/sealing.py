"""Sealing a modal's ``private_metadata``, so that a form cannot be pointed at another run.

Slack keeps ``private_metadata`` server-side, so only someone holding a leaked signing
secret could edit it; sealing is defence in depth and costs one HMAC. The key is derived
from the app's secret (never the secret itself), and the seal covers the exact text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from signoff.bot.errors import TamperedMetadata

__all__ = ["MAX_METADATA", "Sealer"]

#: Slack's limit on a view's ``private_metadata``
MAX_METADATA = 3000

_PURPOSE = b"signoff private_metadata v1"
#: "v1." + 43 characters of base64 + "."
SEAL_LENGTH = 47


class Sealer:
    """Seals and opens JSON objects carried in ``private_metadata``.

    Example::

        sealer = Sealer(settings.signing_secret)
        view = build_input_view(..., private_metadata=sealer.seal({"run": run.id}))
        meta = sealer.open(submitted_view.private_metadata)  # TamperedMetadata if edited
    """

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()

    def _mac(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def seal(self, data: dict[str, Any]) -> str:
        """``data`` as JSON with a seal in front (``SEAL_LENGTH`` characters longer)."""
        text = json.dumps(data, separators=(",", ":"))
        return f"v1.{self._mac(text)}.{text}"

    def open(self, sealed: str) -> dict[str, Any]:
        """The JSON object inside ``sealed``.

        Raises:
            TamperedMetadata: the seal is missing or does not match the text.
        """
        if not sealed.isascii():
            # What ``seal`` makes is ASCII (JSON escapes the rest), and a seal compared with
            # anything else would raise rather than differ.
            raise TamperedMetadata("this form's metadata was not sealed by this app")
        version, _, rest = sealed.partition(".")
        mac, _, text = rest.partition(".")
        if version != "v1" or not hmac.compare_digest(mac, self._mac(text)):
            raise TamperedMetadata("this form's metadata was not sealed by this app")
        value = json.loads(text)
        if not isinstance(value, dict):
            raise TamperedMetadata("this form's metadata is not an object")
        return value
