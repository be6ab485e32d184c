"""Moments as TimeBridge writes and reads them: UTC ISO strings in receipts, timestamps from APIs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso(moment: datetime) -> str:
    """A UTC moment as ``2026-11-21T14:15:00Z`` (receipts of both import and export)."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def parse_timestamp(raw: Any) -> datetime | None:
    """An ISO 8601 timestamp from a target's API (``2026-11-19T07:00:00``), or None when it is not one."""
    try:
        return datetime.fromisoformat(str(raw))
    except ValueError:
        return None
