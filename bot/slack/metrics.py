"""Prometheus metrics for ``GET /metrics``, with ``prometheus-client``.

Two kinds, as Prometheus expects of replicas:

- Counted by this process (sum them over replicas): Slack Web API calls and failures by
  method, requests from Slack refused at the edge by reason, time from a prompt to its answer for answers this process took, and how late
  this process's timers fired. They live in ``PROCESS`` from import on.
- Read from the database at each scrape (every replica reports the same values; take
  ``max``): runs by state, inputs waiting for an answer, and how far each consumer of the
  events table (``slack`` posts to Slack) is behind, and whether the read worked
  (``signoff_backend_up``). ``Metrics(backend)`` adds these.

Example::

    metrics = Metrics(backend)
    body, content_type = metrics.exposition()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from slack_bolt import App, BoltContext, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from signoff.bot.backends import Backend, Pause

logger = logging.getLogger(__name__)

#: Everything counted by this process.
PROCESS = CollectorRegistry(auto_describe=True)

SLACK_CALLS = Counter(
    "signoff_slack_api_calls",
    "Slack Web API calls made by this process, by method.",
    ["method"],
    registry=PROCESS,
)
SLACK_FAILURES = Counter(
    "signoff_slack_api_failures",
    "Slack Web API calls that failed, by method and error (Slack's error code, or the "
    "exception's type when Slack did not answer).",
    ["method", "error"],
    registry=PROCESS,
)
SLACK_REQUESTS_REFUSED = Counter(
    "signoff_slack_requests_refused",
    "Requests to /slack/events refused before any listener saw them, by reason "
    "(bad_signature: a wrong SLACK_SIGNING_SECRET refuses every one; stale_timestamp: "
    "signed outside Slack's 5 minutes, every one when this server's clock is off; "
    "body_too_large; malformed).",
    ["reason"],
    registry=PROCESS,
)
TIME_TO_ANSWER = Histogram(
    "signoff_time_to_answer_seconds",
    "Time from a prompt for input to its answer, for answers this process took.",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600),
    registry=PROCESS,
)
TIMER_LAG = Histogram(
    "signoff_timer_lag_seconds",
    "How late this process's timers (deadlines, reminders, sweeps) fired.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=PROCESS,
)


def observe_answer(pause: Pause) -> None:
    """Count an answer this process recorded, by how long its prompt waited."""
    if pause.answered_at is not None:
        TIME_TO_ANSWER.observe(max((pause.answered_at - pause.created_at).total_seconds(), 0.0))


def observe_timer(_job_id: str, lag_seconds: float) -> None:
    """Count a timer that fired ``lag_seconds`` after its time (a ``Timers`` listener)."""
    TIMER_LAG.observe(max(lag_seconds, 0.0))


def count_body_too_large(path: str) -> None:
    """Count a request the HTTP listener refused for its size before the edge saw it (an
    ``HttpListener``'s ``too_large``), when it was one for Slack's route."""
    if path == "/slack/events":
        SLACK_REQUESTS_REFUSED.labels(reason="body_too_large").inc()


class MeteredWebClient(WebClient):
    """A ``WebClient`` that counts each call and each failure, by Web API method."""

    def api_call(self, api_method: str, *args: Any, **kwargs: Any) -> SlackResponse:
        """Make the call (with the client's retries) and count it once."""
        SLACK_CALLS.labels(method=api_method).inc()
        try:
            response: SlackResponse = super().api_call(api_method, *args, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            SLACK_FAILURES.labels(method=api_method, error=str(error or "unknown")).inc()
            raise
        except Exception as exc:
            SLACK_FAILURES.labels(method=api_method, error=type(exc).__name__).inc()
            raise
        return response


def count_listener_calls(app: App) -> None:
    """Count the Web API calls Bolt's listeners make (``views.open``, ``chat.postEphemeral``):
    Bolt gives each request a plain ``WebClient`` of its own, whatever client the app has."""

    @app.middleware
    def metered_client(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        if type(context.client) is WebClient:
            # The same client, counted: MeteredWebClient adds no state, only its api_call,
            # and this costs nothing where building a copy would on every request.
            context.client.__class__ = MeteredWebClient
        return next()


class DatabaseCollector(Collector):
    """Gauges read from the database at each scrape, through ``Backend.stats``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges. A backend that cannot be read yields ``signoff_backend_up`` 0
        and no others (and is logged): an alert on ``signoff_backend_up == 0`` fires then,
        where one on the missing gauges would only go quiet."""
        up = GaugeMetricFamily(
            "signoff_backend_up",
            "1 when the runs' store (the database, or the Prefect server) answered this "
            "scrape, else 0.",
        )
        try:
            stats = self.backend.stats()
        except Exception as exc:
            # The store is the database, or the Prefect server (which may refuse the bot).
            logger.warning(
                "the runs' store did not answer for metrics: %s",
                exc,
                extra={"action": "metrics_db_failed"},
            )
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        runs = GaugeMetricFamily(
            "signoff_runs", "Runs in the database, by state.", labels=["state"]
        )
        for state, count in stats.runs_by_state.items():
            runs.add_metric([state.value], count)
        yield runs
        yield GaugeMetricFamily(
            "signoff_waiting_inputs",
            "Prompts for input that nobody has answered yet.",
            value=stats.waiting_inputs,
        )
        lag_events = GaugeMetricFamily(
            "signoff_outbox_lag_events",
            "Events stored but not yet handled by a consumer (slack: not yet posted).",
            labels=["consumer"],
        )
        lag_seconds = GaugeMetricFamily(
            "signoff_outbox_lag_seconds",
            "Age of the oldest event a consumer has not handled yet; 0 when it is caught up.",
            labels=["consumer"],
        )
        for consumer in stats.consumers:
            lag_events.add_metric([consumer.consumer], consumer.events_behind)
            lag_seconds.add_metric([consumer.consumer], consumer.seconds_behind)
        yield lag_events
        yield lag_seconds


class Metrics:
    """What ``GET /metrics`` serves for one backend: this process's counts and the database's."""

    def __init__(self, backend: Backend) -> None:
        self.database = CollectorRegistry(auto_describe=True)
        self.database.register(DatabaseCollector(backend))

    def exposition(self) -> tuple[bytes, str]:
        """The body and content type of a scrape, in Prometheus' text format."""
        return generate_latest(PROCESS) + generate_latest(self.database), CONTENT_TYPE_LATEST
