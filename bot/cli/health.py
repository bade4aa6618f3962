"""``signoff worker --health-port``: ``GET /healthz``, ``/readyz`` and ``/metrics`` for a
worker, as ``signoff serve`` answers them, so that an orchestrator can probe a worker
deployed on its own and Prometheus can scrape it.

Example::

    listener = health_listener(engine, lambda: None, host="127.0.0.1", port=8081)
    listener.bind()   # before the worker takes runs: a port in use stops the start
    listener.start()
"""

from __future__ import annotations

from collections.abc import Callable

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.slack.listener import HttpListener
from signoff.bot.slack.payloads import MAX_BODY_BYTES
from signoff.bot.slack.server import wsgi_app
from signoff.engine import Engine

#: the probes and scrapes of one orchestrator and one Prometheus
HEALTH_THREADS = 4


def health_listener(
    engine: Engine, ready: Callable[[], str | None], *, host: str, port: int
) -> HttpListener:
    """An HTTP listener (not started) answering the health routes for ``engine``:
    ``/readyz`` is 503 with ``ready()``'s reason while it returns one."""
    application = wsgi_app(None, EmbeddedBackend(engine), ready=ready)
    return HttpListener(
        application, host=host, port=port, threads=HEALTH_THREADS, max_body=MAX_BODY_BYTES
    )


__all__ = ["HEALTH_THREADS", "health_listener"]
