"""The Prefect backend: Signoff's Slack side over a Prefect server (``signoff[prefect]``).

``PrefectBackend(PrefectSettings.load())`` reads ``PREFECT_API_URL`` and its credentials,
``PREFECT_API_AUTH_STRING`` (a self-hosted server's basic auth) or ``PREFECT_API_KEY``
(Prefect Cloud), as Prefect's own tools do. It talks to Prefect's REST API and
its events websocket (``/events/out``).
"""

from __future__ import annotations

from signoff.bot.backends.prefect.backend import PrefectBackend
from signoff.bot.backends.prefect.settings import Permission, Permissions, PrefectSettings

__all__ = ["Permission", "Permissions", "PrefectBackend", "PrefectSettings"]
