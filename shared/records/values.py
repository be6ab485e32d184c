"""Typed values of record fields, and their conversion from the text of an incoming file."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import assert_never

from shared.errors import FieldValueError
from shared.records.layouts import DECIMAL_PRECISION, DECIMAL_SCALE, FieldKind, FieldSpec

Value = str | date | bool | int | Decimal

# Digits are ASCII only: ``\d`` would also accept Arabic-Indic or full-width digits.
_INTEGER = re.compile(r"^[+-]?([0-9]+)$")
_DECIMAL = re.compile(r"^[+-]?([0-9]*)(?:[.,]([0-9]*))?$")
_DAY_FIRST = re.compile(r"^([0-9]{1,2})-([0-9]{1,2})-([0-9]{4})$")
_YEAR_FIRST = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$")

# --- the SQL types of SmartTID's Create-function parameters (reference §3.1-3.3) ---------------
#: INT is a 32-bit signed integer.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
#: SQL Server's DATETIME starts on 1 January 1753.
EARLIEST_DATE = date(1753, 1, 1)


def sql_length(text: str) -> int:
    """The length SQL Server's NVARCHAR(n) counts: UTF-16 code units (an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


def parse_date(text: str, target: str = "SmartTID") -> date:
    day_first, year_first = _DAY_FIRST.match(text), _YEAR_FIRST.match(text)
    parts = (day_first.group(3, 2, 1) if day_first else year_first.group(1, 2, 3) if year_first else None)
    try:
        if parts is None:
            raise ValueError(text)
        value = date(*(int(part) for part in parts))
    except ValueError:
        raise FieldValueError(
            "is not a valid date",
            "write the date as dd-mm-yyyy (for example 21-11-2026) or yyyy-mm-dd",
        ) from None
    if value < EARLIEST_DATE:
        raise FieldValueError(
            f"is before 1753, the earliest date {target} can store",
            "check the year; write the date as dd-mm-yyyy (for example 21-11-2026)",
        )
    return value


def parse_integer(text: str, target: str = "SmartTID") -> int:
    match = _INTEGER.match(text)
    if not match:
        raise FieldValueError("is not a whole number", "write a whole number without decimals, using the digits 0-9")
    digits = match.group(1).lstrip("0")
    # compare the digit count first: int() refuses strings of more than 4,300 digits
    if len(digits) > 10 or not INT_MIN <= int(text) <= INT_MAX:
        raise FieldValueError(
            f"is outside the range {target} can store ({INT_MIN} to {INT_MAX})",
            "check the number; write a whole number within that range",
        )
    return int(text)


def parse_decimal(text: str, target: str = "SmartTID") -> Decimal:
    match = _DECIMAL.match(text)
    whole, fraction = (match.group(1), match.group(2) or "") if match else ("", "")
    if not match or not (whole or fraction):
        raise FieldValueError(
            "is not a number",
            "write a number with ',' or '.' as decimal separator, no thousands separator and the digits 0-9 "
            "(for example 9,5)",
        )
    whole, fraction = whole.lstrip("0"), fraction.rstrip("0")
    if len(fraction) > DECIMAL_SCALE:
        raise FieldValueError(
            f"has {len(fraction)} digits after the decimal separator; {target} keeps at most {DECIMAL_SCALE}",
            f"round the number to {DECIMAL_SCALE} decimals in the ERP",
        )
    if len(whole) > DECIMAL_PRECISION - DECIMAL_SCALE:
        raise FieldValueError(
            f"is too large; {target} keeps at most {DECIMAL_PRECISION - DECIMAL_SCALE} digits before the decimal "
            "separator",
            "check the number",
        )
    return Decimal(text.replace(",", "."))


def convert(spec: FieldSpec, text: str, target: str = "SmartTID") -> Value:
    """Convert the (non-empty, stripped) text of a field to its typed value. ``target`` names the
    target system in the messages (the limits are those of SmartTID's parameter types, checked for
    every target: the files are in SmartTID's format)."""
    length = sql_length(text)
    if spec.max_length is not None and length > spec.max_length:
        counted = "" if length == len(text) else f" as {target} counts them (emoji and some rare characters count two)"
        raise FieldValueError(
            f"is {length} characters long{counted}; {target} allows at most {spec.max_length}",
            f"shorten it to {spec.max_length} characters or fewer",
        )
    match spec.kind:
        case FieldKind.TEXT:
            return text
        case FieldKind.DATE:
            return parse_date(text, target)
        case FieldKind.FLAG:
            if text not in ("0", "1"):
                raise FieldValueError("is not 0 or 1", "write 1 for yes and 0 for no")
            return text == "1"
        case FieldKind.INTEGER:
            return parse_integer(text, target)
        case FieldKind.DECIMAL:
            return parse_decimal(text, target)
        case FieldKind.CHOICE:
            for choice in spec.choices:
                if choice.lower() == text.lower():
                    return choice
            raise FieldValueError(
                "is not an allowed value", f"use one of: {', '.join(spec.choices)}"
            )
    assert_never(spec.kind)


def same_value(a: Value | None, b: Value | None) -> bool:
    """Equality as SmartTID would see it: numbers by value, text exactly, dates by day."""
    if isinstance(a, Decimal | int) and not isinstance(a, bool) and isinstance(b, Decimal | int | float):
        return Decimal(str(a)) == Decimal(str(b))
    return a == b
