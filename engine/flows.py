"""``@flow``: ordinary functions whose calls are recorded as runs."""

from __future__ import annotations

import inspect
import sys
import warnings
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

import pydantic
from pydantic.json_schema import PydanticJsonSchemaWarning

from signoff.engine import serialization
from signoff.engine.actors import checked_ids
from signoff.engine.errors import InvalidParameters
from signoff.engine.refusals import model_errors
from signoff.engine.registry import registry

P = ParamSpec("P")
R = TypeVar("R")


#: the longest flow or task name the store keeps (and so the longest one accepted)
MAX_NAME = 200


def _default_name(fn: Callable[..., Any]) -> str:
    return fn.__name__.replace("_", "-")


def checked_name(kind: str, name: str) -> str:
    """``name``, if the store can keep it as a ``kind`` name; ValueError naming it if not.

    Checked when the function is decorated, not when its first run is stored: the one
    store would refuse it there and the other cut nothing, so both refuse it here."""
    if len(name) > MAX_NAME:
        raise ValueError(
            f"{kind} name {name[:40]!r}... is {len(name)} characters; at most {MAX_NAME}"
        )
    if "\x00" in name:
        raise ValueError(f"{kind} name {name!r} has a NUL character")
    return name


def _ref(fn: Callable[..., Any]) -> str | None:
    """Where a worker can import ``fn`` from: ``module:qualname`` or ``path.py:qualname``."""
    if "<locals>" in fn.__qualname__:
        return None
    module = sys.modules.get(fn.__module__)
    source = getattr(module, "__signoff_source__", None)
    if source is None and fn.__module__ == "__main__":
        source = getattr(module, "__file__", None)
    return f"{source or fn.__module__}:{fn.__qualname__}"


class Flow(Generic[P, R]):
    """A function whose every call is a recorded run. Made by ``@flow``."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        approvers: Sequence[str] = (),
        forbid_starter: bool = False,
        starters: Sequence[str] = (),
        cancellers: Sequence[str] = (),
        confirm: bool = False,
        viewers: Sequence[str] = (),
    ) -> None:
        self.fn = fn
        self.name = checked_name("flow", name or _default_name(fn))
        self.description = description or inspect.getdoc(fn)
        self.approvers = checked_ids("approvers", approvers)
        self.forbid_starter = forbid_starter
        self.starters = checked_ids("starters", starters)
        self.cancellers = checked_ids("cancellers", cancellers)
        self.viewers = checked_ids("viewers", viewers)
        self.confirm = confirm
        self.is_async = inspect.iscoroutinefunction(fn)
        self.ref = _ref(fn)
        self.signature = _signature(fn)
        self.parameters_model = _parameters_model(self.name, self.signature, fn.__module__)
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__wrapped__ = fn

    def validate_parameters(self, values: dict[str, Any]) -> dict[str, Any]:
        """Coerce and check parameters against the function's type hints.

        Raises:
            InvalidParameters: a parameter is missing, unknown, or of the wrong type.
        """
        try:
            model = self.parameters_model.model_validate(values)
        except pydantic.ValidationError as exc:
            raise InvalidParameters(self.name, model_errors(exc)) from exc
        except pydantic.PydanticUserError as exc:
            # A type hint naming what only a type checker imports: nothing can be judged.
            raise InvalidParameters(
                self.name, {"": f"its type hints cannot be read: {exc}"}
            ) from exc
        bound = {name: getattr(model, name) for name in self.signature.parameters}
        # Kept pickled and shown as JSON: only text that UTF-8 cannot hold is refused.
        unstorable = serialization.unstorable_values(bound, numbers=False)
        if unstorable:
            raise InvalidParameters(self.name, unstorable)
        return bound

    def parameters_schema(self) -> dict[str, Any] | None:
        """The JSON schema of the flow's parameters (to build a form for starting it), or
        None when a parameter's type has none (an arbitrary class): such a flow takes its
        parameters from code or as JSON, and its type hints judge them."""
        try:
            with warnings.catch_warnings():
                # A default JSON cannot show (bytes) is left out of the schema, which is
                # what the warning says on every start otherwise.
                warnings.simplefilter("ignore", PydanticJsonSchemaWarning)
                return self.parameters_model.model_json_schema()
        except pydantic.PydanticUserError:
            return None

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            if "return_state" in kwargs and "return_state" not in self.signature.parameters:
                # Prefect's call option, common in code and tests written for it.
                raise InvalidParameters(
                    self.name,
                    {
                        "": f"{exc}: return_state is Prefect's; calling a Signoff flow "
                        "returns its result or raises its error (its run's state is stored: "
                        "signoff runs show)"
                    },
                ) from exc
            raise InvalidParameters(self.name, {"": str(exc)}) from exc
        return self.validate_parameters(dict(bound.arguments))

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        from signoff.engine.runner import call_flow, call_flow_async

        parameters = self.bind(*args, **kwargs)
        if self.is_async:
            return cast("R", call_flow_async(self, parameters))
        return cast("R", call_flow(self, parameters))

    if not TYPE_CHECKING:  # a type checker keeps reporting unknown attributes

        def __getattr__(self, name: str) -> Any:
            # Only for names the instance lacks: Prefect's say what to do instead.
            if name in _PREFECT_MEMBERS:
                raise AttributeError(f"Flow.{name} is Prefect's: {_PREFECT_MEMBERS[name]}")
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<Flow {self.name}>"


#: Prefect's Flow members that Signoff's lack, and what to do instead
_PREFECT_MEMBERS = {
    **dict.fromkeys(
        ("serve", "deploy", "to_deployment", "from_source"),
        "Signoff's workers run flows (signoff worker --flows FILE), and signoff run or "
        "/runs start starts one",
    ),
    "with_options": "make another flow from the function with @flow(name=..., ...)",
}


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature, its string annotations (``from __future__ import annotations``)
    read as the types they name in ``fn``'s module."""
    try:
        return inspect.signature(fn, eval_str=True)
    except Exception:
        # A name only importable for type checkers: pydantic resolves what it can later.
        return inspect.signature(fn)


def _parameters_model(
    name: str, signature: inspect.Signature, module: str
) -> type[pydantic.BaseModel]:
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"flow {name!r}: *args and **kwargs parameters are not supported")
        annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    return pydantic.create_model(
        f"{name}-parameters",
        __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        __module__=module,
        **fields,
    )


#: Prefect's @flow options that Signoff's flows do not have (yet), and why; the TypeError
#: for one says so, where Python's would only call it unexpected
_PREFECT_ONLY = {
    "retries": "flow retries are not implemented yet (a task's are: @task(retries=N))",
    "retry_delay_seconds": "flow retries are not implemented yet (a task's are)",
    "timeout_seconds": "flow timeouts are not implemented yet (a pause's timeout= is)",
    "log_prints": "print() is not captured; log with get_run_logger()",
    **dict.fromkeys(
        (
            *("version", "flow_run_name", "task_runner", "validate_parameters"),
            *("persist_result", "result_storage", "result_serializer", "cache_result_in_memory"),
            *("on_completion", "on_failure", "on_cancellation", "on_crashed", "on_running"),
        ),
        "Signoff's flows do not have this Prefect option",
    ),
}


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    approvers: Sequence[str] = (),
    forbid_starter: bool = False,
    starters: Sequence[str] = (),
    cancellers: Sequence[str] = (),
    confirm: bool = False,
    viewers: Sequence[str] = (),
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    approvers: Sequence[str] = (),
    forbid_starter: bool = False,
    starters: Sequence[str] = (),
    cancellers: Sequence[str] = (),
    confirm: bool = False,
    viewers: Sequence[str] = (),
    **others: Any,
) -> Flow[P, R] | Callable[[Callable[P, R]], Flow[P, R]]:
    """Make a function a flow: each call is a run, recorded with its states, tasks and logs.

    Sync and async functions both work. The name defaults to the function's name with
    ``_`` turned into ``-``. Who may act (ids of people or groups; see ``engine.permissions``):

    - ``approvers`` and ``forbid_starter``: who may answer this flow's pauses, unless a
      pause says otherwise (empty: anyone);
    - ``starters``: who may start it (empty: anyone); admins always may;
    - ``cancellers``: who may cancel its runs (empty: whoever started the run, whoever may
      answer it, and admins).
    - ``viewers``: who may also view its runs in Slack (``/runs show``, ``/runs`` lists),
      such as auditors, without any other right. Once a flow names anyone in these lists,
      its runs are shown only to the people they name, to whoever started or acted on a
      run, and to admins.

    ``confirm=True`` asks whoever answers to confirm before the answer counts.

    Example::

        @flow(name="deploy", approvers=["U024BE7LH"])
        def deploy(service: str, version: str) -> None:
            ...

    Raises:
        TypeError: an option Signoff's flows do not have; Prefect's (``retries``,
            ``timeout_seconds``, ``log_prints``, ...) are named as not supported. Or
            ``approvers``, ``starters``, ``cancellers`` or ``viewers`` is not a list of ids
            (one id given as text, say).
        ValueError: one of those lists holds an empty id, or one with spaces around it.
    """
    for option in others:
        if option in _PREFECT_ONLY:
            raise TypeError(f"@flow({option}=...) is not supported: {_PREFECT_ONLY[option]}")
        raise TypeError(f"flow() got an unexpected keyword argument {option!r}")

    def decorate(fn: Callable[P, R]) -> Flow[P, R]:
        made = Flow(
            fn,
            name=name,
            description=description,
            approvers=approvers,
            forbid_starter=forbid_starter,
            starters=starters,
            cancellers=cancellers,
            confirm=confirm,
            viewers=viewers,
        )
        registry.add(made)
        return made

    return decorate(fn) if fn is not None else decorate


AsyncResult = Coroutine[Any, Any, Any]
