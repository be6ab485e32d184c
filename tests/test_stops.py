"""The import's one record of why it stopped writing (shared/importing/importer.Stops)."""

from __future__ import annotations

from shared.importing.importer import ImportResult, StopReason, Stops


def test_the_first_reason_is_the_receipts_and_every_reason_is_remembered() -> None:
    stops = Stops()
    assert (stops.first, stops.halt_writes, StopReason.BUDGET in stops) == (None, False, False)
    assert stops.add(StopReason.BUDGET) is True
    assert stops.add(StopReason.BUDGET) is False  # seen before
    assert stops.halt_writes is False  # the budget stops a write that does not fit, not every write
    assert stops.add(StopReason.LIMIT) is True
    assert (stops.first, stops.halt_writes, StopReason.LIMIT in stops) == (StopReason.BUDGET, True, True)


def test_the_result_reads_its_stops() -> None:
    result = ImportResult()
    assert (result.stopped_by, result.out_of_time) == ("", False)
    result.stops.add(StopReason.TIME)
    result.stops.add(StopReason.RETRIES)
    assert (result.stopped_by, result.out_of_time) == ("time", True)
    assert result.stopped_by == StopReason.TIME and result.stops.halt_writes
