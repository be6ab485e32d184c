"""Timer trigger: every EXPORT_SCHEDULE (NCRONTAB, UTC), new ledger entries go to the output container.

Overlapping runs (scale-out, a manual trigger) are harmless: :func:`shared.export.run_export`
takes a lease on a lock blob, and the export state is only changed by conditional writes.

A run that raises logs its summary event (``TimeBridgeExport`` with status ``failed``, see
:mod:`shared.export.events`) and then fails the invocation as before.
"""

from __future__ import annotations

import logging
import time

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("export_ledger")
@bp.timer_trigger(arg_name="timer", schedule="%EXPORT_SCHEDULE%", use_monitor=True, run_on_startup=False)
def export_ledger(timer: func.TimerRequest) -> None:
    from shared.export import run_export
    from shared.export.events import report_export_failure
    from shared.targets.registry import load_all_settings

    settings = load_all_settings()  # first: a refused configuration fails the run before anything else
    if timer.past_due:
        log.info("export timer is past due; exporting now")
    started = time.monotonic()
    try:
        receipt = run_export(settings)
    except Exception as exc:  # the summary event of a failed run; the invocation still fails
        report_export_failure(settings, exc, time.monotonic() - started)
        raise
    if receipt is not None:
        log.info("%s", receipt.summary())
