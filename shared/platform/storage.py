"""Blob and table clients built from settings, and a self-renewing lease on the blob being processed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobClient, BlobLeaseClient, BlobServiceClient

from shared.errors import ConfigurationError
from shared.platform.config import Settings

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.identity import DefaultAzureCredential

log = logging.getLogger(__name__)

#: Small transfer sizes keep memory flat whatever the file size (the SDK defaults read up to 32 MiB
#: and write up to 64 MiB in one request).
TRANSFER_CHUNK = 1024 * 1024


def credential(settings: Settings) -> DefaultAzureCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id)


def blob_service(settings: Settings) -> BlobServiceClient:
    """Connection string locally (Azurite); managed identity against ``__blobServiceUri`` in Azure."""
    options: dict[str, Any] = {
        "max_single_get_size": TRANSFER_CHUNK,
        "max_chunk_get_size": TRANSFER_CHUNK,
        "max_single_put_size": TRANSFER_CHUNK,
        "max_block_size": TRANSFER_CHUNK,
    }
    if settings.storage_connection_string:
        return BlobServiceClient.from_connection_string(settings.storage_connection_string, **options)
    if settings.storage_blob_service_uri:
        return BlobServiceClient(settings.storage_blob_service_uri, credential=credential(settings), **options)
    raise ConfigurationError(
        "No storage is configured: set IntegrationStorage__blobServiceUri (Azure) or IntegrationStorage "
        "(a connection string, local development only)."
    )


def table_service(settings: Settings) -> TableServiceClient:
    """Connection string locally (Azurite); managed identity against ``__tableServiceUri`` in Azure."""
    from azure.data.tables import TableServiceClient

    if settings.storage_connection_string:
        return TableServiceClient.from_connection_string(settings.storage_connection_string)
    if settings.storage_table_service_uri:
        return TableServiceClient(settings.storage_table_service_uri, credential=credential(settings))
    raise ConfigurationError(
        "No table storage is configured: set IntegrationStorage__tableServiceUri "
        "(Azure) or IntegrationStorage (a connection string, local development only)."
    )


def ensure_containers(service: BlobServiceClient, names: tuple[str, ...]) -> None:
    for name in names:
        with suppress(ResourceExistsError):
            service.create_container(name)


def ensure_tables(service: TableServiceClient, names: Iterable[str]) -> list[str]:
    """Create the tables that do not exist yet — local set-up only (the CLI's ``init``, the demo, the
    tests): in Azure, infra/ creates them and the app's identity may only use them (Storage Table
    Data Contributor on each table), so the app itself never creates a table at run time. A create
    the service refuses (403) counts as "exists". Returns the names created."""
    created = []
    for name in dict.fromkeys(names):
        try:
            service.create_table(name)
        except ResourceExistsError:
            continue
        except HttpResponseError as exc:
            if exc.status_code != 403:
                raise
            log.info("table %s: creating it was refused (HTTP 403); taken as existing", name)
            continue
        created.append(name)
    return created


@contextmanager
def held_lease(blob: BlobClient, seconds: int = 60) -> Iterator[BlobLeaseClient | None]:
    """Hold a lease on ``blob`` while the block runs, renewing it in the background.

    Yields ``None`` when another instance holds the lease (it is processing the same file).
    """
    try:
        lease = blob.acquire_lease(lease_duration=seconds)
    except HttpResponseError as exc:
        if exc.status_code == 409:
            yield None
            return
        raise
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(seconds / 3):
            try:
                lease.renew()
            except HttpResponseError as exc:  # pragma: no cover - the blob vanished or the lease broke
                log.warning("could not renew the lease on %s (HTTP %s)", blob.blob_name, exc.status_code)
                return

    renewer = threading.Thread(target=renew, name="lease-renewal", daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join(timeout=5)
        with suppress(HttpResponseError):  # already gone with the deleted blob
            lease.release()
