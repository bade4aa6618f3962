"""A background loop's outage, logged once: its first failure, then its recovery.

The loops that reach the database on their own (the worker's, the reader of events, the
LISTEN connection, the event consumers, the timers) fail on every try while it is down,
and try again about once a second. A line per try would bury the two that matter, so each
loop keeps an ``Outage``: the first failure is logged under the loop's own ``action``,
later ones are only counted, and the first success after them is logged with the count,
as a warning: wherever the failure shows (a command logging warnings only), its end shows
too, or the outage would look as if it had never ended. (Not as an error, when the failure
was one: an alert on errors should not fire again for the recovery.)::

    outage = Outage(logger, "event_read_failed", "event_read_recovered",
                    failed="could not read events",
                    recovered="events read again after %d failed tries")
    while running:
        try:
            read()
        except StoreError:
            outage.failed()
            continue
        outage.over()
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Outage"]


class Outage:
    """Failures in a row of one loop; ``extra``: fields both log lines carry (a consumer's
    name). ``recovered`` takes the count of failures as its one ``%d``."""

    def __init__(
        self,
        logger: logging.Logger,
        failed_action: str,
        recovered_action: str,
        *,
        failed: str,
        recovered: str,
        **extra: Any,
    ) -> None:
        self._logger = logger
        self._failed = (failed, {"action": failed_action, **extra})
        self._recovered = (recovered, {"action": recovered_action, **extra})
        #: failures since the last success
        self.failures = 0

    def failed(self, *args: object, traceback: bool = False) -> None:
        """One more failure; the first of the outage is logged as a warning (``args`` fill
        ``failed``'s placeholders), or with ``traceback`` as an error with the exception
        being handled."""
        if self.failures == 0:
            message, extra = self._failed
            level = logging.ERROR if traceback else logging.WARNING
            self._logger.log(level, message, *args, exc_info=traceback, extra=extra)
        self.failures += 1

    def over(self) -> None:
        """A success: if it ends an outage, that is logged as a warning, with how many
        tries failed."""
        if self.failures:
            message, extra = self._recovered
            extra = {**extra, "failures": self.failures}
            self._logger.warning(message, self.failures, extra=extra)
            self.failures = 0
