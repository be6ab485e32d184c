"""Timer trigger: every RESUME_SCHEDULE (NCRONTAB, UTC), lines deferred for a target's daily call
budget (Tic-Tac), or because an import reached its time limit (IMPORT_TIME_LIMIT_SECONDS, any
target), are applied, oldest file first, as far as the budget and the time limit allow.

Overlapping runs are harmless: :func:`shared.importing.intake.resume_deferred` takes the target's
lock lease (the same one every import of that target holds). With a target without a call limit
(SmartTID) a run lists the pending entries and, normally, finds none.
"""

from __future__ import annotations

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("resume_deferred")
@bp.timer_trigger(arg_name="timer", schedule="%RESUME_SCHEDULE%", use_monitor=True, run_on_startup=False)
def resume_deferred(timer: func.TimerRequest) -> None:
    from shared.importing.resume import resume_deferred as resume
    from shared.platform.storage import blob_service
    from shared.targets.factory import connector_factory
    from shared.targets.registry import load_all_settings

    settings = load_all_settings()  # first: a refused configuration fails the run before anything else
    done = resume(settings, blob_service(settings), connector_factory(settings))
    log.info("deferred lines: %d file(s) completed", done)
