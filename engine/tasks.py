"""``@task``: steps of a flow whose results are stored, retried on failure, and reused.

When a run is executed again (after a suspend, or after its process died), a task call
whose result is stored returns that result instead of running again. Calls are matched
by task name and call order, so a re-run must call tasks in the same order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

from signoff.engine import serialization
from signoff.engine.context import (
    CallTally,
    RunContext,
    current_run,
    current_task,
    task_is_async,
    task_tallies,
)
from signoff.engine.flows import checked_name
from signoff.engine.runs import RunState
from signoff.engine.signals import Cancel, TakenOver
from signoff.engine.suspend_requests import suspend_at_boundary

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)


class Task(Generic[P, R]):
    """A function whose calls inside a flow are recorded task runs. Made by ``@task``."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        retries: int | None = 0,
        retry_delay_seconds: RetryDelays = 0,
    ) -> None:
        self.fn = fn
        self.name = checked_name("task", name or fn.__name__.replace("_", "-"))
        self.retries = _checked_retries(self.name, retries)
        #: the wait before each retry; the last is kept for the retries past the list
        self.retry_delays = _checked_delays(self.name, retry_delay_seconds, self.retries)
        self.is_async = inspect.iscoroutinefunction(fn)
        try:
            self.signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # some callables made in C have none to read
            self.signature = None
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        ctx = current_run.get()
        if ctx is None:  # outside a flow a task is just its function
            return self._call_alone(args, kwargs)
        self._check_arguments(args, kwargs)
        if self.is_async:
            return cast("R", self._call_async(ctx, args, kwargs))
        return self._call_sync(ctx, args, kwargs)

    def _check_arguments(self, args: Any, kwargs: Any) -> None:
        """Raise TypeError for a call the function cannot take, before it counts as a task
        run: retrying it could only fail the same way (Prefect binds first, too).

        Raises:
            TypeError: naming the task; Prefect's call options say what to do instead.
        """
        if self.signature is None:
            return
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            for option, instead in _PREFECT_CALL_OPTIONS.items():
                if option in kwargs and option not in self.signature.parameters:
                    raise TypeError(
                        f"task {self.name!r}: {option} is Prefect's; {instead}"
                    ) from None
            raise TypeError(f"task {self.name!r} cannot take these arguments: {exc}") from None

    def _call_alone(self, args: Any, kwargs: Any) -> R:
        """The function, called with no run, but known as this task: ``get_run_logger()``
        in it logs (nothing is stored), as in a Prefect task called outside a flow, so a
        task can be tried or tested by calling it."""
        if self.is_async:
            return cast("R", self._call_alone_async(args, kwargs))
        token = current_task.set(self.name)
        try:
            return self.fn(*args, **kwargs)
        finally:
            current_task.reset(token)

    async def _call_alone_async(self, args: Any, kwargs: Any) -> Any:
        token = current_task.set(self.name)
        try:
            return await cast("Any", self.fn)(*args, **kwargs)
        finally:
            current_task.reset(token)

    def _next_key(self, ctx: RunContext) -> str:
        """The call's key, given at call time so that concurrent calls keep their order."""
        if ctx.engine.is_cancelled(ctx.run_id):
            raise Cancel(ctx.run_id)
        suspend_at_boundary(ctx)
        return ctx.next_task_key(self.name)

    def _still_ours(self, ctx: RunContext, lapses: int) -> None:
        """Raise TakenOver if another process runs this run now: this one missed
        heartbeats (a database outage, a long stop), and the task's body must not run in
        both."""
        if ctx.engine.store.get_run(ctx.run_id).owner != ctx.engine.process_id:
            logger.warning(
                "run taken over by another process",
                extra={"action": "run_taken_over", "run_id": ctx.run_id, "task": self.name},
            )
            raise TakenOver(ctx.run_id)
        ctx.lapses_seen = lapses

    def _replay(self, ctx: RunContext, key: str) -> tuple[bool, Any]:
        """Whether this call's result is stored (a re-run), and that result."""
        lapses = ctx.engine.heartbeat_lapses()
        if lapses != ctx.lapses_seen:
            self._still_ours(ctx, lapses)
        if ctx.fresh:
            return False, None
        stored = ctx.engine.store.completed_task(ctx.run_id, key)
        # A completed task without a stored result had an unpicklable value: run it again.
        if stored is not None and stored.result is not None:
            logger.debug(
                "task reused", extra={"action": "task_reused", "run_id": ctx.run_id, "task": key}
            )
            # Its body does not run: the calls it made count as made, for the keys after it.
            ctx.skip_calls(stored.inner_calls)
            return True, serialization.load_stored(
                stored.result, ctx.run_id, f"the stored result of task {key!r}"
            )
        return False, None

    def _call_sync(self, ctx: RunContext, args: Any, kwargs: Any) -> R:
        key = self._next_key(ctx)
        found, value = self._replay(ctx, key)
        if found:
            return cast("R", value)
        started, attempt, tally = datetime.now(UTC), 1, CallTally()
        token, sync = current_task.set(key), task_is_async.set(False)
        counting = task_tallies.set((*task_tallies.get(), tally))
        try:
            while True:
                try:
                    result = self.fn(*args, **kwargs)
                    break
                except Exception as exc:
                    if attempt > self.retries:
                        self._record(ctx, key, started, attempt, tally, exc=exc)
                        raise
                    self._retrying(ctx, key, attempt, exc)
                    time.sleep(self._delay(attempt))
                    attempt += 1
        finally:
            task_tallies.reset(counting)
            task_is_async.reset(sync)
            current_task.reset(token)
        self._record(ctx, key, started, attempt, tally, result=result)
        return result

    async def _call_async(self, ctx: RunContext, args: Any, kwargs: Any) -> Any:
        # Store calls run on the engine's store threads: the flow's loop never blocks.
        offload = ctx.engine.store_threads.call
        key = self._next_key(ctx)
        looks = not ctx.fresh or ctx.engine.heartbeat_lapses() != ctx.lapses_seen
        found, value = await offload(self._replay, ctx, key) if looks else (False, None)
        if found:
            return value
        started, attempt, tally = datetime.now(UTC), 1, CallTally()
        token, awaited = current_task.set(key), task_is_async.set(True)
        counting = task_tallies.set((*task_tallies.get(), tally))
        try:
            while True:
                try:
                    result = await cast("Any", self.fn)(*args, **kwargs)
                    break
                except Exception as exc:
                    if attempt > self.retries:
                        await offload(self._record, ctx, key, started, attempt, tally, exc=exc)
                        raise
                    self._retrying(ctx, key, attempt, exc)
                    await asyncio.sleep(self._delay(attempt))
                    attempt += 1
        finally:
            task_tallies.reset(counting)
            task_is_async.reset(awaited)
            current_task.reset(token)
        await offload(self._record, ctx, key, started, attempt, tally, result=result)
        return result

    def _delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first), as Prefect reads
        a list of delays: one per retry, the last for any retries past the list."""
        delays = self.retry_delays
        return delays[min(retry, len(delays)) - 1] if delays else 0.0

    def _retrying(self, ctx: RunContext, key: str, attempt: int, exc: Exception) -> None:
        message = (
            f"task {key} failed ({serialization.error_text(exc)}); retry {attempt} of "
            f"{self.retries}"
        )
        with ctx.lock:
            ctx.logs.append((datetime.now(UTC), "WARNING", message, key))
        logger.warning(message, extra={"action": "task_retry", "run_id": ctx.run_id, "task": key})

    def _record(
        self,
        ctx: RunContext,
        key: str,
        started: datetime,
        attempts: int,
        tally: CallTally,
        *,
        result: Any = None,
        exc: Exception | None = None,
    ) -> None:
        blob: bytes | None = None
        if exc is None:
            try:
                blob = serialization.dump(result)
            except Exception as error:
                ctx.unstorable[f"the result of task {key}"] = error
        ctx.engine.store.record_task(
            ctx.run_id,
            key,
            self.name,
            RunState.FAILED if exc else RunState.COMPLETED,
            attempts,
            blob,
            None if exc else serialization.preview(result),
            serialization.error_text(exc) if exc else None,
            started,
            ctx.take_logs(),
            tally.recorded(),
        )

    if not TYPE_CHECKING:  # a type checker keeps reporting unknown attributes

        def __getattr__(self, name: str) -> Any:
            # Only for names the instance lacks: Prefect's say what to do instead.
            if name in _PREFECT_MEMBERS:
                raise AttributeError(f"Task.{name} is Prefect's: {_PREFECT_MEMBERS[name]}")
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


#: Prefect's Task members that Signoff's lack, and what to do instead
_PREFECT_MEMBERS = {
    **dict.fromkeys(
        ("submit", "map"),
        "call the task itself; an async task's calls run concurrently under asyncio.gather",
    ),
    **dict.fromkeys(
        ("apply_async", "delay"),
        "Signoff runs tasks inside their flow's run, not on background task workers",
    ),
    "with_options": "make another task from the function with @task(name=..., retries=...)",
}


#: Prefect's options of a task call, and what to do instead
_PREFECT_CALL_OPTIONS = {
    "return_state": "calling a Signoff task returns its result or raises its error (its "
    "state is stored with the run: signoff runs show)",
    "wait_for": "a task call runs when it is called, after the calls before it have "
    "returned (async ones: after those awaited before it)",
}


#: Prefect's @task options that Signoff's tasks do not have, and why; the TypeError for
#: one says so, where Python's would only call it unexpected (as for @flow's)
_PREFECT_ONLY = {
    "timeout_seconds": "task timeouts are not implemented yet",
    "log_prints": "print() is not captured; log with get_run_logger()",
    **dict.fromkeys(
        ("retry_jitter_factor", "retry_condition_fn"),
        "a task retries every failure, after retry_delay_seconds",
    ),
    **dict.fromkeys(
        (
            *("persist_result", "result_storage", "result_storage_key", "result_serializer"),
            *("cache_result_in_memory", "cache_policy", "cache_key_fn", "cache_expiration"),
            "refresh_cache",
        ),
        "a task's result is always stored, and reused when its run is run again; "
        "there is no cache across runs",
    ),
    **dict.fromkeys(
        (
            *("description", "tags", "version", "task_run_name", "viz_return_value"),
            *("on_completion", "on_failure", "on_commit", "on_rollback", "asset_deps"),
        ),
        "Signoff's tasks do not have this Prefect option",
    ),
}


#: ``retry_delay_seconds`` as Prefect takes it: seconds, a list of seconds (one per retry),
#: a function of the number of retries giving that list (``exponential_backoff``), or None
RetryDelays = float | Sequence[float] | Callable[[int], Sequence[float]] | None
#: the longest list of delays, as Prefect has it
MAX_RETRY_DELAYS = 50
#: the longest wait before a retry: longer, and the flow would rather suspend
MAX_RETRY_DELAY = 366 * 86_400.0


def _checked_retries(task_name: str, retries: object) -> int:
    """``retries`` as a count (None, Prefect's default, is none).

    Raises:
        TypeError, ValueError: naming the task and the value."""
    if retries is None:
        return 0
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise TypeError(f"task {task_name!r}: retries is a whole number, not {retries!r:.60}")
    if retries < 0:
        raise ValueError(f"task {task_name!r}: retries must not be negative, not {retries}")
    return retries


def _checked_delays(task_name: str, given: object, retries: int) -> tuple[float, ...]:
    """``retry_delay_seconds`` as the wait before each retry.

    Raises:
        TypeError, ValueError: naming the task and the value."""
    if given is None:
        return ()
    if callable(given):
        given = given(retries)
    values = list(given) if isinstance(given, list | tuple) else [given]
    if len(values) > MAX_RETRY_DELAYS:
        raise ValueError(
            f"task {task_name!r}: retry_delay_seconds lists {len(values)} delays; "
            f"at most {MAX_RETRY_DELAYS}"
        )
    delays: list[float] = []
    for value in values:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(
                f"task {task_name!r}: retry_delay_seconds is seconds (a number, a list of "
                f"them, or a function giving that list), not {value!r:.60}"
            )
        if not 0 <= value <= MAX_RETRY_DELAY:  # NaN fails this too
            raise ValueError(
                f"task {task_name!r}: a retry delay is between 0 and "
                f"{MAX_RETRY_DELAY:,.0f} seconds (a year), not {value!r}"
            )
        delays.append(float(value))
    return tuple(delays)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *, name: str | None = None, retries: int | None = 0, retry_delay_seconds: RetryDelays = 0
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int | None = 0,
    retry_delay_seconds: RetryDelays = 0,
    **others: Any,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function a task: inside a flow its calls are recorded, retried and reused.

    ``retry_delay_seconds`` takes what Prefect's does: seconds, a list with the wait before
    each retry (the last one for any retries past it), or a function of ``retries`` giving
    that list.

    Example::

        @task(retries=3, retry_delay_seconds=[1, 10, 60])
        def build(version: str) -> str:
            ...

    Raises:
        TypeError: an option Signoff's tasks do not have; Prefect's (``log_prints``,
            ``persist_result``, ``timeout_seconds``, ...) are named as not supported. Or
            ``retries`` or ``retry_delay_seconds`` of the wrong type.
        ValueError: ``retries`` negative, or a delay negative, not finite or over a year.
    """
    for option in others:
        if option in _PREFECT_ONLY:
            raise TypeError(f"@task({option}=...) is not supported: {_PREFECT_ONLY[option]}")
        raise TypeError(f"task() got an unexpected keyword argument {option!r}")

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return Task(fn, name=name, retries=retries, retry_delay_seconds=retry_delay_seconds)

    return decorate(fn) if fn is not None else decorate
