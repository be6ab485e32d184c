"""A record as the file asks for it, and a line's rejection in the administrator's terms."""

from __future__ import annotations

from dataclasses import dataclass

from shared.records.layouts import LAYOUTS, RecordType
from shared.records.values import Value


@dataclass(frozen=True)
class LineError:
    """One reason a line was rejected, in the administrator's terms."""

    line: int
    record_type: str
    field: str  # "sJobCode (position 1)", or "" when the problem is the whole line
    value: str
    reason: str
    action: str


@dataclass(slots=True)
class Record:
    """One employee / job / operation as the file asks it to be (only supplied fields)."""

    record_type: RecordType
    key: tuple[Value, ...]
    values: dict[str, Value]
    lines: list[int]

    @property
    def line(self) -> int:
        return self.lines[0]

    def describe(self) -> str:
        layout = LAYOUTS[self.record_type]
        key = ", ".join(f"{name} {self.values[name]}" for name in layout.key)
        return f"{self.record_type} {key}"


def fold_key(key: tuple[Value, ...]) -> tuple[Value, ...]:
    if len(key) == 1:  # an employee's or a job's (the usual keys without a loop)
        return (key[0].casefold(),) if isinstance(key[0], str) else key
    if len(key) == 2:  # an operation's
        first, second = key
        return (first.casefold() if isinstance(first, str) else first,
                second.casefold() if isinstance(second, str) else second)
    return tuple([value.casefold() if isinstance(value, str) else value for value in key])
