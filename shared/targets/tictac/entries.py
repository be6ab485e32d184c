"""Tic-Tac's ``GET /v2/entries`` rows as the export's neutral entries (:class:`shared.targets.base.Entry`).

The fingerprint is the one the export ledger has always stored for a Tic-Tac row (its ``type``,
``userid``, ``projid``, ``actid``, ``date``, ``spec`` and the hours, normalised): a change of the
formula would make every exported row look changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.targets.base import Entry
from shared.targets.tictac.client import boolean

#: The ``type`` of a time registration (the others are costs, mileage and sales).
TIME_ROW = "TicTacTime"


def hours_of(row: Mapping[str, Any]) -> Decimal | None:
    try:
        value = Decimal(str(row.get("hours")))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def fingerprint(row: Mapping[str, Any]) -> str:
    """A hash of the source values whose change makes a correction (the remark included)."""
    hours = hours_of(row)
    values = [str(row.get(name) or "") for name in ("type", "userid", "projid", "actid", "date", "spec")]
    values.append(format(hours.normalize(), "f") if hours is not None else str(row.get("hours")))
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode()).hexdigest()[:32]


def to_entry(row: Mapping[str, Any]) -> Entry:
    """One Tic-Tac row as an entry (userNames are compared without regard to case: the links are keyed
    by the folded userName)."""
    kind, user = str(row.get("type") or ""), str(row.get("userid") or "")
    return Entry(
        id=str(row.get("rowid") or ""), is_time=kind == TIME_ROW, kind=kind, user=user, user_key=user.casefold(),
        project=str(row.get("projid") or ""), project_name=str(row.get("projectname") or ""),
        activity=str(row.get("actid") or ""), person_name=str(row.get("username") or ""),
        date=str(row.get("date") or ""), hours=hours_of(row), hours_text=repr(row.get("hours")),
        attested=boolean(row.get("attested")), attested_text=repr(row.get("attested")),
        remark=str(row.get("spec") or ""), fingerprint=fingerprint(row), raw=dict(row),
    )
