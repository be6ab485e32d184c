"""Typed values of record fields, and their conversion from the text of an incoming file."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from shared.layouts import FieldSpec, Kind

Value = str | date | bool | int | Decimal

_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")


class FieldValueError(ValueError):
    """The text of one field cannot be used; ``reason`` and ``action`` are for the administrator."""

    def __init__(self, reason: str, action: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.action = action


def parse_date(text: str) -> date:
    for fmt in ("%d-%m-%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise FieldValueError(
        "is not a valid date",
        "write the date as dd-mm-yyyy (for example 21-11-2026) or yyyy-mm-dd",
    )


def parse_decimal(text: str) -> Decimal:
    if not _DECIMAL.match(text):
        raise FieldValueError(
            "is not a number",
            "write a number with ',' or '.' as decimal separator and no thousands separator (for example 9,5)",
        )
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees a number
        raise FieldValueError("is not a number", "write a plain number") from None


def convert(spec: FieldSpec, text: str) -> Value:
    """Convert the (non-empty, stripped) text of a field to its typed value."""
    if spec.max_length is not None and len(text) > spec.max_length:
        raise FieldValueError(
            f"is {len(text)} characters long; SmartTID allows at most {spec.max_length}",
            f"shorten it to {spec.max_length} characters or fewer",
        )
    match spec.kind:
        case Kind.TEXT:
            return text
        case Kind.DATE:
            return parse_date(text)
        case Kind.FLAG:
            if text not in ("0", "1"):
                raise FieldValueError("is not 0 or 1", "write 1 for yes and 0 for no")
            return text == "1"
        case Kind.INTEGER:
            if not _INTEGER.match(text):
                raise FieldValueError("is not a whole number", "write a whole number without decimals")
            return int(text)
        case Kind.DECIMAL:
            return parse_decimal(text)
        case Kind.CHOICE:
            for choice in spec.choices:
                if choice.lower() == text.lower():
                    return choice
            raise FieldValueError(
                "is not an allowed value", f"use one of: {', '.join(spec.choices)}"
            )
    raise AssertionError(spec.kind)  # pragma: no cover


def same_value(a: Value | None, b: Value | None) -> bool:
    """Equality as SmartTID would see it: numbers by value, text exactly, dates by day."""
    if isinstance(a, Decimal | int) and not isinstance(a, bool) and isinstance(b, Decimal | int | float):
        return Decimal(str(a)) == Decimal(str(b))
    return a == b
