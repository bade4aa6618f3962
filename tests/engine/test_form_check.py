"""The schema check (the form's check) refuses exactly what the model's types refuse.

Every structural type a form can ask for goes through both the stored schema's check
(``schema_errors(input_schema(M), ...)``, what ``resume`` and the Slack modal apply) and
the model (``M.model_validate``), on a corpus of good and bad JSON values; the two must
agree on each one. Only the model's own validators may refuse after the check.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import ipaddress
import json
import uuid
import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any, Literal

import pydantic
import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AnyUrl, EmailStr, Field, HttpUrl

from signoff.bot.inputs import SlackChannel, SlackUser
from signoff.engine import schema_errors
from signoff.engine.input import RunInput
from signoff.engine.input_schema import input_schema


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Place(pydantic.BaseModel):
    city: str = Field(min_length=2)
    zip: str = Field(pattern=r"^\d{5}$")


UUID_V1 = uuid.UUID("00000000-0000-1000-8000-000000000000")
UUID_V4 = uuid.UUID("00000000-0000-4000-8000-000000000000")

# (annotation, good JSON values, bad JSON values)
CORPUS: list[tuple[str, Any, list[Any], list[Any]]] = [
    ("str", str, ["", "x", "a b\nc"], [None, 3, ["x"]]),
    (
        "str lengths",
        Annotated[str, Field(min_length=2, max_length=4)],
        ["ab", "abcd", "ǅǅ"],
        ["a", "abcde", ""],
    ),
    (
        "pattern",
        Annotated[str, Field(pattern=r"^[a-z]+$")],
        ["abc", "z"],
        ["abc\n", "Abc", "", "ab1", "\nabc"],
    ),
    (
        "pattern unanchored",
        Annotated[str, Field(pattern=r"\d{3}")],
        ["123", "a123b", "x\n123"],
        ["12", "abc"],
    ),
    ("pattern end", Annotated[str, Field(pattern=r"ok$")], ["ok", "is ok"], ["ok\n", "ok "]),
    (
        "pattern lookahead (Python engine)",
        Annotated[str, Field(pattern=r"^(?!x)\w+$")],
        ["abc", "abc\n"],
        ["xabc", "a b"],
    ),
    (
        "email",
        EmailStr,
        ["ada@example.com", "Ada.Lovelace+x@example.co.uk"],
        ["ada@", "ada", "@example.com", "ada@example", "a b@example.com", ""],
    ),
    (
        "any url",
        AnyUrl,
        ["https://example.com/x?y=1", "ftp://files.example.com", "mailto:ada@example.com"],
        ["not a url", "", "example.com", "http://"],
    ),
    (
        "http url",
        HttpUrl,
        ["https://example.com", "http://localhost:8080/x"],
        [
            "ftp://example.com",
            "not a url",
            "https://",
            "mailto:ada@example.com",
            "https://" + "a" * 2100 + ".com",
        ],
    ),
    ("int bounds", Annotated[int, Field(ge=1, le=5)], [1, 5], [0, 6, 2.5, None]),
    ("int exclusive", Annotated[int, Field(gt=0, lt=10, multiple_of=3)], [3, 9], [0, 10, 4]),
    (
        "float bounds",
        Annotated[float, Field(gt=0, le=1.5)],
        [0.1, 1.5, 1],
        [0, -1, 1.51, None],
    ),
    (
        "float multiple",
        Annotated[float, Field(multiple_of=0.1)],
        [0.3, 0.7, 2.3, 1, 0, -0.3, 1e20],
        [0.25, 0.05, 0.31, 123456789.1],
    ),
    (
        "float multiple of a whole step",
        Annotated[float, Field(multiple_of=5)],
        # past 2**53 a whole number is read as the float nearest it (Hypothesis found it)
        [10, 15.0, 18_014_398_509_481_976],
        [12.5, 11],
    ),
    ("int multiple", Annotated[int, Field(multiple_of=5)], [10, -15], [12, 18_014_398_509_481_976]),
    (
        "decimal bounds",
        Annotated[Decimal, Field(ge=0, le=1000)],
        ["0", "12.50", "1000", 12.5, 0, 1000],
        ["-3", "1000.01", -3, 1000.01, "abc", "", True, None],
    ),
    (
        "decimal places",
        Annotated[Decimal, Field(max_digits=5, decimal_places=2)],
        ["123.45", "0.1", 99],
        ["1.234", "1234.5", 123456],
    ),
    (
        "decimal exclusive",
        Annotated[Decimal, Field(gt=Decimal("0.1"), lt=5)],
        ["0.11", "4.99", 1],
        ["0.1", "5", 0.1, 5],
    ),
    ("optional decimal", Annotated[Decimal, Field(ge=0)] | None, [None, "1.5", 2], ["-0.5", -1]),
    ("bool", bool, [True, False], [None, "maybe", [True]]),
    ("literal", Literal["small", "large"], ["small", "large"], ["medium", "Small", None]),
    ("enum", Colour, ["red", "blue"], ["green", "RED"]),
    (
        "list of str",
        Annotated[list[str], Field(min_length=1, max_length=2)],
        [["a"], ["a", "b"]],
        [[], ["a", "b", "c"], [1], "a"],
    ),
    ("list of literal", list[Literal["a", "b"]], [[], ["a", "b"]], [["c"], "a"]),
    (
        "date",
        dt.date,
        ["2026-11-30", "2024-02-29"],
        ["2026-13-01", "2025-02-29", "30/11/2026", "", "2026-11-30T10:00:00Z"],
    ),
    ("time", dt.time, ["10:30:00", "23:59"], ["24:00:00", "10:61", "noon"]),
    (
        "datetime",
        dt.datetime,
        ["2026-11-30T10:00:00Z", "2026-11-30T10:00:00+01:00"],
        ["2026-11-30T25:00:00Z", "yesterday", ""],
    ),
    ("uuid", uuid.UUID, [str(uuid.UUID(int=7))], ["not-a-uuid", "1234"]),
    ("uuid version", pydantic.UUID4, [str(UUID_V4)], [str(UUID_V1), "not-a-uuid"]),
    (
        "ipv4",
        ipaddress.IPv4Address,
        ["10.0.0.1", "255.255.255.255"],
        ["not-an-ip", "256.0.0.1", "10.0.0.1/24", "::1", ""],
    ),
    ("ipv6", ipaddress.IPv6Address, ["::1", "2001:db8::1"], ["10.0.0.1", "2001:db8::g", ""]),
    ("any ip", pydantic.IPvAnyAddress, ["10.0.0.1", "::1"], ["999.1.1.1", "host", ""]),
    (
        "ip network",
        pydantic.IPvAnyNetwork,
        ["10.0.0.0/24", "2001:db8::/64", "10.0.0.1"],
        ["10.0.0.1/24", "10.0.0.0/33", "x"],
    ),
    ("ip interface", pydantic.IPvAnyInterface, ["10.0.0.1/24", "::1/128"], ["10.0.0.1/33", "x"]),
    ("ipv4 network", ipaddress.IPv4Network, ["10.0.0.0/8"], ["10.0.0.1/8", "::/0"]),
    (
        "postgres dsn",
        pydantic.PostgresDsn,
        ["postgresql://app:pw@db:5432/app", "postgres://h1:5432,h2:5432/app"],
        ["mysql://db/app", "not a url", ""],
    ),
    ("future date", pydantic.FutureDate, ["2999-01-01"], ["2000-01-01", "2999-13-01"]),
    ("past date", pydantic.PastDate, ["2000-01-01"], ["2999-01-01"]),
    (
        "date bounds",
        Annotated[dt.date, Field(gt=dt.date(2020, 1, 1), le=dt.date(2030, 12, 31))],
        ["2020-01-02", "2030-12-31"],
        ["2020-01-01", "2031-01-01"],
    ),
    (
        "aware datetime",
        pydantic.AwareDatetime,
        ["2026-01-01T10:00:00Z", "2026-01-01T10:00:00+01:00"],
        ["2026-01-01T10:00:00"],
    ),
    (
        "naive datetime",
        pydantic.NaiveDatetime,
        ["2026-01-01T10:00:00"],
        ["2026-01-01T10:00:00Z", "2026-01-01T10:00:00-05:00"],
    ),
    ("future datetime", pydantic.FutureDatetime, ["2999-01-01T00:00:00Z"], ["2000-01-01T00:00Z"]),
    ("past datetime", pydantic.PastDatetime, ["2000-01-01T00:00:00Z"], ["2999-01-01T00:00Z"]),
    (
        "datetime bounds",
        Annotated[dt.datetime, Field(ge=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))],
        ["2020-01-01T00:00:00Z", "2020-01-01T01:00:00+01:00"],
        ["2019-12-31T23:59:59Z", "2020-01-01T00:00:00+01:00"],
    ),
    (
        "time bounds",
        Annotated[dt.time, Field(ge=dt.time(9), lt=dt.time(17))],
        ["09:00:00", "16:59"],
        ["08:59", "17:00"],
    ),
    (
        "duration bounds",
        Annotated[dt.timedelta, Field(gt=dt.timedelta(hours=1))],
        ["PT2H", "P1D"],
        ["PT1H", "PT30M"],
    ),
    ("slack user", SlackUser, ["U024BE7LH", "W0123ABC"], ["alice", "C0123ABC", "u024be7lh"]),
    ("slack channel", SlackChannel, ["C0123ABC", "G0123ABC"], ["#general", "U024BE7LH"]),
    (
        "nested model",
        Place,
        [{"city": "Oslo", "zip": "01234"}, {"city": "Oslo", "zip": "01234", "x": 1}],
        [
            {"city": "O", "zip": "01234"},
            {"city": "Oslo", "zip": "01234\n"},
            {"city": "Oslo"},
        ],
    ),
    (
        "optional nested",
        Place | None,
        [None, {"city": "Oslo", "zip": "01234"}],
        [{"city": "Oslo", "zip": "1"}, {}],
    ),
]


class PythonRegex(RunInput):
    model_config = pydantic.ConfigDict(regex_engine="python-re")


def model_for(annotation: Any) -> type[RunInput]:
    try:
        return pydantic.create_model("Answer", __base__=RunInput, v=(annotation, ...))
    except pydantic_core.SchemaError:
        # Look-arounds need Python's re, which the model must then ask for.
        return pydantic.create_model("Answer", __base__=PythonRegex, v=(annotation, ...))


def model_accepts(model: type[RunInput], value: Any) -> bool:
    try:
        with quiet_ipaddress():
            model.model_validate({"v": value})
    except pydantic.ValidationError:
        return False
    return True


@contextlib.contextmanager
def quiet_ipaddress() -> Iterator[None]:
    """pydantic's IPvAny* validators hand a bool to ``ipaddress``, which warns that its
    ``__int__`` is not an int: a warning, not the model's verdict (it refuses the bool)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__int__ returned non-int", DeprecationWarning)
        yield


CASES = [
    pytest.param(annotation, value, expected, id=f"{name}:{value!r:.40}")
    for name, annotation, good, bad in CORPUS
    for expected, values in ((True, good), (False, bad))
    for value in values
]


@pytest.mark.parametrize(("annotation", "value", "expected"), CASES)
def test_schema_check_and_model_agree(annotation: Any, value: Any, expected: bool) -> None:
    model = model_for(annotation)
    errors = schema_errors(input_schema(model), {"v": value})
    by_model = model_accepts(model, value)
    assert by_model is expected, f"the corpus is wrong about {value!r}"
    assert (not errors) is by_model, f"schema says {errors or 'ok'}, model says {by_model}"
    if errors:
        assert list(errors) == ["v"] or all(k.startswith("v") for k in errors)


#: JSON of another type that the model would coerce: the check is stricter here on purpose
#: (as Prefect's server is), and no Slack input can send these.
COERCED = [(int, "3"), (int, True), (float, "0.5"), (float, False), (bool, "true"), (bool, 1)]


@pytest.mark.parametrize(("annotation", "value"), COERCED)
def test_values_of_another_json_type_are_refused_by_the_check(annotation: Any, value: Any) -> None:
    model = model_for(annotation)
    assert model_accepts(model, value)
    assert schema_errors(input_schema(model), {"v": value})["v"].startswith("must be")


def test_messages_name_what_was_wrong() -> None:
    class Budget(RunInput):
        owner: EmailStr
        link: HttpUrl
        amount: Decimal = Field(ge=0, le=1000)
        code: str = Field(pattern=r"^[A-Z]{3}$")

    schema = input_schema(Budget)
    bad = {"owner": "ada@", "link": "not a url", "amount": "-3", "code": "ABC\n"}
    assert schema_errors(schema, bad) == {
        "amount": "must be at least 0",
        "code": "must match the pattern ^[A-Z]{3}$",
        "link": "must be a URL starting with http:// or https://",
        "owner": "must be an email address",
    }
    assert schema_errors(schema, {**bad, "amount": "1000.01"})["amount"] == "must be at most 1000"
    # A URL of a scheme the field does not take is a URL: say which schemes it takes.
    assert schema_errors(schema, {**bad, "link": "ftp://example.com"})["link"] == (
        "must be a URL starting with http:// or https://"
    )
    assert schema_errors(schema, {**bad, "link": "https://"})["link"] == "must be a URL"


def test_counts_in_messages_agree_with_their_number() -> None:
    class Tags(RunInput):
        one: list[str] = Field(min_length=1, max_length=1)
        some: list[str] = Field(min_length=2, max_length=3)
        letter: str = Field(min_length=1, max_length=1)
        word: str = Field(min_length=2, max_length=5)

    schema = input_schema(Tags)
    assert schema_errors(schema, {"one": [], "some": ["a"], "letter": "", "word": "a"}) == {
        "one": "needs at least 1 item",
        "some": "needs at least 2 items",
        "letter": "must be at least 1 character long",
        "word": "must be at least 2 characters long",
    }
    too_many = {"one": ["a", "b"], "some": ["a"] * 4, "letter": "ab", "word": "abcdef"}
    assert schema_errors(schema, too_many) == {
        "one": "takes at most 1 item",
        "some": "takes at most 3 items",
        "letter": "must be at most 1 character long",
        "word": "must be at most 5 characters long",
    }


def test_messages_of_the_rules_of_addresses_dates_and_times_read_well() -> None:
    class Server(RunInput):
        ip: ipaddress.IPv4Address
        network: pydantic.IPvAnyNetwork
        not_before: pydantic.FutureDate
        since: Annotated[dt.date, Field(gt=dt.date(2020, 1, 1))]
        at: pydantic.AwareDatetime
        local: pydantic.NaiveDatetime
        within: Annotated[dt.timedelta, Field(le=dt.timedelta(hours=2))]
        ticket: pydantic.UUID4

    bad = {
        "ip": "not-an-ip",
        "network": "10.0.0.1/24",
        "not_before": "2000-01-01",
        "since": "2020-01-01",
        "at": "2026-01-01T10:00:00",
        "local": "2026-01-01T10:00:00Z",
        "within": "PT3H",
        "ticket": str(UUID_V1),
    }
    assert schema_errors(input_schema(Server), bad) == {
        "at": "must include a time zone",
        "ip": "must be an IPv4 address",
        "local": "must not include a time zone",
        "network": "must be an IP network (10.0.0.0/24)",
        "not_before": "must be a date in the future",
        "since": "must be after 2020-01-01",
        "ticket": "must be a version 4 UUID",
        "within": "must be at most 2:00:00",
    }


def test_a_schema_stored_before_the_extra_keywords_still_bounds_decimals() -> None:
    class Old(RunInput):
        amount: Decimal = Field(ge=0, le=1000)

    plain = Old.model_json_schema()  # as pauses stored it before; no x-signoff-decimal
    assert schema_errors(plain, {"amount": "-3"}) == {"amount": "must be at least 0"}
    assert schema_errors(plain, {"amount": "1000.01"}) == {"amount": "must be at most 1000"}
    assert schema_errors(plain, {"amount": "999.5"}) == {}


def test_python_regex_engine_of_the_model_is_followed() -> None:
    class Loose(RunInput):
        model_config = pydantic.ConfigDict(regex_engine="python-re")
        code: str = Field(pattern=r"^[a-z]+$")

    schema = input_schema(Loose)
    # Python's $ also matches before a final newline, and this model asked for Python's re.
    Loose.model_validate({"code": "abc\n"})
    assert schema_errors(schema, {"code": "abc\n"}) == {}


class Contact(pydantic.BaseModel):
    handle: str = Field(max_length=5)  # its own config: not stripped


class Stripped(RunInput):
    model_config = pydantic.ConfigDict(str_strip_whitespace=True)
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    code: str | None = Field(default=None, min_length=3, max_length=3)
    email: pydantic.EmailStr | None = None
    contact: Contact | None = None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # A pasted value's trailing space or newline, which the model drops before its checks
        ({"version": "1.2.3 "}, {}),
        ({"version": "1.2.3", "code": "\tABC\n"}, {}),
        ({"version": "1.2.3", "email": " ada@example.com "}, {}),
        # Stripped, it is too short for the model too
        ({"version": "1.2.3", "code": " AB "}, {"code": "must be at least 3 characters long"}),
        # A nested model strips only if its own config says so, as pydantic does
        (
            {"version": "1.2.3", "contact": {"handle": "abcde "}},
            {"contact.handle": "must be at most 5 characters long"},
        ),
    ],
)
def test_text_the_model_strips_is_checked_without_the_spaces_around_it(
    answer: dict[str, Any], expected: dict[str, str]
) -> None:
    assert schema_errors(input_schema(Stripped), answer) == expected
    assert model_accepts_answer(Stripped, answer) is (expected == {})


def model_accepts_answer(model: type[RunInput], answer: dict[str, Any]) -> bool:
    try:
        model.model_validate(answer)
    except pydantic.ValidationError:
        return False
    return True


def test_a_number_or_text_union_without_bounds_takes_any_text() -> None:
    class Loose(RunInput):
        value: float | str

    for schema in (input_schema(Loose), Loose.model_json_schema()):
        assert schema_errors(schema, {"value": "any text"}) == {}
        assert schema_errors(schema, {"value": 2.5}) == {}


# -- the same agreement, on values Hypothesis draws ------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _near(value: Any) -> st.SearchStrategy[Any]:
    """Values a character or a hair away from ``value``: where checks tend to disagree."""
    if isinstance(value, bool) or value is None:
        return st.just(value)
    if isinstance(value, int | float):
        step = st.sampled_from([-1, -0.01, -1e-9, 0, 1e-9, 0.01, 1])
        return step.map(lambda d: value + d) | step.map(lambda d: str(value + d))
    if isinstance(value, str):
        edits = st.tuples(st.integers(0, len(value)), st.text(max_size=2), st.integers(0, 2))
        return edits.map(lambda e: value[: e[0]] + e[1] + value[e[0] + e[2] :])
    if isinstance(value, list):
        return st.lists(st.sampled_from(value) if value else _SCALARS, max_size=len(value) + 1)
    if isinstance(value, dict):
        return st.fixed_dictionaries({k: _near(v) for k, v in value.items()})
    return st.just(value)


def _drawn(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    known = good + bad
    return _JSON | st.sampled_from(known) | st.sampled_from(known).flatmap(_near)


#: pydantic's IPvAny* take a number (or a bool) as an address even in strict mode; the
#: check asks for text, as their JSON schema says (and a form sends)
NUMBERS_AS_ADDRESSES = (pydantic.IPvAnyAddress, pydantic.IPvAnyInterface, pydantic.IPvAnyNetwork)


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [pytest.param(a, g, b, id=name) for name, a, g, b in CORPUS],
)
def test_on_any_value_a_passed_check_means_the_model_accepts(
    annotation: Any, good: list[Any], bad: list[Any]
) -> None:
    model = model_for(annotation)
    schema = input_schema(model)

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(value=_drawn(good, bad))
    def check(value: Any) -> None:
        errors = schema_errors(schema, {"v": value})
        if not errors:
            assert model_accepts(model, value), f"the check passed {value!r}; the model refuses it"
        elif model_accepts_strictly(model, value) and not (
            annotation in NUMBERS_AS_ADDRESSES and isinstance(value, int | float)
        ):
            raise AssertionError(
                f"the check refuses {value!r} ({errors}); strict JSON types take it"
            )

    check()


def model_accepts_strictly(model: type[RunInput], value: Any) -> bool:
    """Whether the model takes ``value`` as JSON with no coercion between JSON types."""
    try:
        with quiet_ipaddress():
            model.model_validate_json(json.dumps({"v": value}), strict=True)
    except pydantic.ValidationError:
        return False
    return True
