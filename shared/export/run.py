"""``run_export(settings)``: one export run, host-free (the timer function and the demo call it)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobClient

from shared.errors import ExportStateChanged
from shared.export.ledger_table import ExportLedger
from shared.export.protocol import LOCK_BLOB, Exporter
from shared.export.receipt import ExportReceipt
from shared.platform.config import Settings
from shared.platform.storage import blob_service, held_lease
from shared.targets.base import Connector

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
    lock = service.get_blob_client(settings.output_container, LOCK_BLOB)
    _ensure_exists(lock)
    with held_lease(lock) as lease:
        if lease is None:
            log.info("export: another run holds the export lock; this run does nothing")
            return None
        try:
            return Exporter(settings, service, ledger, connector_factory).run()
        except ExportStateChanged as exc:
            log.warning("export: %s", exc)
            return None


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
