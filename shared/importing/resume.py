"""The work of the ``resume_deferred`` timer: lines deferred for a target's call budget, or because an
import reached its time limit (``IMPORT_TIME_LIMIT_SECONDS``), are imported again,
oldest file first (see :mod:`shared.importing.deferral` for where they wait and why in order)."""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Iterable
from dataclasses import replace

from azure.storage.blob import BlobServiceClient

from shared.importing import events
from shared.importing.deferral import REASONS, Deferrals, PendingEntry, room_to_start
from shared.importing.intake import (
    CSV,
    JSON,
    TEXT,
    Intake,
    _pick_lines,
    apply_parsed,
    connect,
    deferral_note,
    read_file,
)
from shared.importing.reports import ImportStatus, Receipt, error_report_chunks
from shared.platform import telemetry
from shared.platform.clock import now_iso
from shared.platform.config import Settings
from shared.platform.safe_text import visible
from shared.targets.factory import ConnectorFactory
from shared.targets.registry import target_spec

log = logging.getLogger(__name__)


def resume_deferred(settings: Settings, service: BlobServiceClient, connector_factory: ConnectorFactory) -> int:
    """The timer's work: the pending entries of the target, oldest first, while the budget has room
    for their first calls (``next_attempt_after`` is an estimate, never a wait); returns how many
    were completed. Later entries wait while an older one still has lines."""
    intake = Intake(settings, service, connector_factory)
    deferrals = intake._deferrals()
    done = 0
    with deferrals.turn() as turn:
        if turn is None:
            log.info("another import of %s runs; the deferred lines wait for the next run",
                     target_spec(settings.target_system).display_name)
            return 0
        for entry in deferrals.entries():
            if not resume(intake, entry, deferrals):
                break
            done += 1
    return done


def resume(intake: Intake, entry: PendingEntry, deferrals: Deferrals) -> bool:
    """Import ``entry``'s waiting lines again (the caller holds the target's turn); True when
    none are left. A resumption receipt goes beside the file's receipt; what is still waiting
    replaces the waiting lines; rejected lines get an error report, numbered as in the original."""
    archive = intake.settings.archive_container
    waiting_blob = intake._blob(archive, entry.lines_blob)

    def stream() -> Iterable[bytes]:
        return waiting_blob.download_blob().chunks()

    stamp = now_iso()
    receipt = Receipt(source=entry.source, etag=entry.folder.rsplit("/", 1)[-1], status=ImportStatus.RESUMED,
                      received_at=stamp, folder=entry.folder)
    original = entry.original_lines or None
    connector, problem = connect(intake.connector_factory, entry.source)
    if connector is not None and not room_to_start(connector, entry):
        log.info("the deferred lines of %s wait: the call budget has no room for their first %d calls yet",
                 visible(entry.source), entry.calls_to_start)
        connector.close()
        return False
    until = ""
    started = time.monotonic()
    try:
        parsed, batches = read_file(intake.settings, connector, stream, waiting_blob.get_blob_properties().size)
        result, until = apply_parsed(intake.settings, connector, problem, parsed, receipt, batches,
                                     deadline=started + intake.settings.import_time_limit_seconds)
    finally:
        if connector is not None:
            connector.close()

    def numbered(line: int) -> int:  # the line's number in the original file
        return original[line - 1] if original and 0 < line <= len(original) else line

    receipt.lines = parsed.lines_read
    receipt.counts = result.line_counts()
    receipt.duration_seconds = round(time.monotonic() - started, 3)
    receipt.notes += result.notes
    tag = stamp.replace(":", "").replace("-", "")
    if result.errors:
        picked = {line for error in result.errors for line in parsed.span(error.line)}
        rejected_name = f"{entry.folder}/resumed-{tag}.rejected.csv"
        report_name = f"{entry.folder}/resumed-{tag}.errors.txt"
        intake._upload(intake.settings.error_container, rejected_name, _pick_lines(stream(), picked, []), CSV)
        errors = (replace(error, line=numbered(error.line)) for error in result.errors)
        intake._upload(intake.settings.error_container, report_name,
                       error_report_chunks(receipt, errors, posixpath.basename(rejected_name)), TEXT)
        receipt.outputs["error_report"] = f"{intake.settings.error_container}/{report_name}"
        receipt.outputs["rejected_lines"] = f"{intake.settings.error_container}/{rejected_name}"
    left = result.has_deferred()
    if left:
        local = sorted({line for first in result.deferred_lines for line in parsed.span(first)})
        remainder = b"".join(_pick_lines(stream(), set(local), []))
        waiting_blob.upload_blob(remainder, overwrite=True, content_settings=CSV)
        entry.original_lines = [numbered(line) for line in local]
        entry.waiting = receipt.counts.get("deferred", 0)
        entry.next_attempt_after = until
        entry.resumptions += 1
        entry.calls_to_start = result.calls_to_start or entry.calls_to_start
        entry.reason = REASONS.get(result.stopped_by, entry.reason or "call-budget")
        deferrals.save(entry)
        receipt.notes.append(deferral_note(intake.settings, result, entry.waiting, until))
        receipt.deferred = {"lines": entry.waiting, "next_attempt_after": until,
                            "file": f"{archive}/{entry.lines_blob}"}
        receipt.status = ImportStatus.PARTIALLY_APPLIED
    else:
        deferrals.remove(entry)
    intake._upload(archive, f"{entry.folder}/resumed-{tag}.json", receipt.to_json(), JSON)
    log.info("resumed %s: %s", visible(entry.source), receipt.counts)
    target = intake.settings.target_system
    events.import_finished(receipt, target=target, errors=result.errors)
    telemetry.deferral(file=entry.source, etag=receipt.etag, target=target,
                       status="resumed" if left else "completed", records_pending=entry.waiting if left else 0,
                       deferred_since=entry.deferred_since or stamp, reason=entry.reason or "call-budget")
    return not left
