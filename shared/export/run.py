"""``run_export(settings)``: one export run, host-free (the timer function and the demo call it)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient

from shared.errors import ExportStateChangedError
from shared.export.flagged_source import FlaggedSource
from shared.export.ledger_table import ExportLedger
from shared.export.protocol import LEGACY_PREFIXES, LOCK_BLOB, Exporter, LedgerSource
from shared.export.receipt import ExportReceipt
from shared.platform.config import Settings
from shared.platform.storage import blob_service, held_lease
from shared.targets.base import Connector
from shared.targets.registry import LedgerKind, target_spec

log = logging.getLogger(__name__)


def run_export(
    settings: Settings, *, connector_factory: Callable[[], Connector] | None = None
) -> ExportReceipt | None:
    """Export every new ledger entry to one file in the output container.

    Returns the run's receipt; ``None`` when there was nothing new, or when another run holds the
    export lock (it does the work). Raises when the run failed; the next run completes it.
    """
    if connector_factory is None:
        from shared.targets.factory import connector_factory as build_factory

        connector_factory = build_factory(settings)
    service = blob_service(settings)
    ledger = ExportLedger.connect(settings)
    lock = service.get_blob_client(settings.export_state_container, LOCK_BLOB)
    _ensure_exists(lock)
    with held_lease(lock) as lease:
        if lease is None:
            log.info("export: another run holds the export lock; this run does nothing")
            return None
        move_legacy_bookkeeping(service, settings)
        source: Callable[[Exporter], LedgerSource] = FlaggedSource
        if target_spec(settings.target_system).ledger is LedgerKind.SENT_LEDGER:
            from shared.export.sent_ledger import SentLedgerSource

            source = SentLedgerSource
        try:
            return Exporter(settings, service, ledger, connector_factory, source=source).run()
        except ExportStateChangedError as exc:
            log.warning("export: %s", exc)
            return None


def move_legacy_bookkeeping(service: BlobServiceClient, settings: Settings) -> int:
    """Move what versions before EXPORT_STATE_CONTAINER kept in the output container (``_state/``,
    ``receipts/``) to the export's own container, so the ERP sees only its files. Idempotent: copy,
    then delete; an interrupted move is finished by the next run. Returns the number of blobs moved."""
    output = service.get_container_client(settings.output_container)
    bookkeeping = service.get_container_client(settings.export_state_container)
    moved = 0
    for old_prefix, new_prefix in LEGACY_PREFIXES.items():
        for blob in output.list_blobs(name_starts_with=old_prefix):
            source = output.get_blob_client(blob.name)
            if new_prefix is not None:
                target = new_prefix + blob.name[len(old_prefix):]
                try:
                    data = source.download_blob().readall()
                except ResourceNotFoundError:
                    continue
                bookkeeping.upload_blob(target, data, overwrite=True, content_settings=blob.content_settings)
            try:
                source.delete_blob()
                moved += 1
            except ResourceNotFoundError:
                pass
            except HttpResponseError as exc:  # the old lock, still leased by a run of the old version
                log.info("export: %s stays in the output container for now (HTTP %s)", blob.name, exc.status_code)
    if moved:
        log.info("export: moved %d bookkeeping blobs from %s to %s", moved, settings.output_container,
                 settings.export_state_container)
    return moved


def _ensure_exists(lock: BlobClient) -> None:
    if lock.exists():
        return
    try:
        lock.upload_blob(b"", overwrite=False)
    except ResourceExistsError:
        pass
    except HttpResponseError as exc:  # leased meanwhile by another run
        if exc.status_code not in (409, 412):
            raise
