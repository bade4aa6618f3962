"""How large, and how fine, a number an answer or a flow parameter may be.

A ``Decimal`` holds ``1e1000000000`` in a few bytes, but written out in plain digits (as a
``Decimal`` field takes them, and as a Slack form sends them) it is a gigabyte, made with
the interpreter lock held. Past ``MAX_DIGITS`` digits before the point, or decimal places
after it, a number is refused by name wherever it comes from (the command line, Python,
Prefect), as a Slack form refuses it ("Enter a smaller number"), before anything writes it
out or stores it.

    >>> number_refusal(Decimal("1e10000000"))
    'must be a smaller number (at most 4,300 digits before the point)'
    >>> number_refusal(Decimal("12.50")) is None
    True
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["MAX_DIGITS", "number_refusal", "text_number_refusal"]

#: The most digits a number may have before its point, and the most decimal places after
#: it: as many as Python writes out of an int (``sys.int_info.default_max_str_digits``).
#: A Slack form (``bot.forms.submissions``) refuses the same numbers.
MAX_DIGITS = 4300


def number_refusal(number: Decimal) -> str | None:
    """Why ``number`` is no answer (too large, or too fine, to write out), or None.
    Reads only its exponent: nothing is written out."""
    if not number.is_finite():
        return "must be a finite number"
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # a finite number's
    if number and number.adjusted() >= MAX_DIGITS:
        return f"must be a smaller number (at most {MAX_DIGITS:,} digits before the point)"
    if -exponent > MAX_DIGITS:
        return f"must have at most {MAX_DIGITS:,} decimal places"
    return None


def text_number_refusal(text: str) -> str | None:
    """``number_refusal`` of a number given as text (``"1e10000000"`` to a ``Decimal``
    field); None for text that is no number, which the field's own check refuses."""
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return number_refusal(number) if number.is_finite() else None
