"""The export's telemetry: its receipt, or its failure with the run the state still holds, as the
plain summaries :mod:`shared.platform.telemetry` emits."""

from __future__ import annotations

import logging

from shared.export.receipt import ExportReceipt
from shared.platform import telemetry
from shared.platform.config import Settings


def export_finished(receipt: ExportReceipt, *, target: str) -> None:
    """The summary event of one completed export run."""
    telemetry.export_finished(
        file=receipt.file, run_id=receipt.run_id, target=target, status=receipt.status,
        time_entries=receipt.counts.get("time_ledger_entries", 0),
        job_entries=receipt.counts.get("job_ledger_entries", 0),
        marked_transferred=receipt.marked_transferred, api_calls=int(receipt.api_calls.get("total", 0)),
        duration_seconds=receipt.duration_seconds, started_at=receipt.started_at)


def report_export_failure(settings: Settings, error: BaseException, duration_seconds: float) -> None:
    """:func:`telemetry.export_failed` for the timer function, with the unfinished run the export state
    still holds (best effort: when storage itself is what failed, the state cannot be read either)."""
    run_id = since = ""
    try:
        from shared.export.ledger_table import ExportLedger

        intent = ExportLedger.connect(settings).read_state().intent
        if intent is not None:
            run_id, since = intent.run_id, intent.created_at
    except Exception as exc:  # never hide the run's own error behind this one
        logging.getLogger(__name__).warning("the export state could not be read for the failure event (%s)",
                                            type(exc).__name__)
    telemetry.export_failed(error, target=settings.target_system, open_intent_run_id=run_id,
                            open_intent_since=since, duration_seconds=duration_seconds)
