"""Blob trigger: a file dropped in the input container is imported into the target system.

The trigger binds to a ``BlobClient`` (SDK-type binding), so the host does not load the file into
memory; :mod:`shared.importing.intake` streams it through the storage SDK.
"""

from __future__ import annotations

import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("import_file")
@bp.blob_trigger(
    arg_name="client",
    path="%INPUT_CONTAINER%/{name}",
    connection="IntegrationStorage",
    source=func.BlobSource.EVENT_GRID,
)
def import_file(client: blob.BlobClient) -> None:
    from shared.platform.safe_text import visible
    from shared.targets.registry import load_all_settings
    from shared.wiring import build_intake

    settings = load_all_settings()
    if client.container_name != settings.input_container:  # pragma: no cover - host guarantees the path
        log.warning("ignoring %s/%s: not in the input container", visible(client.container_name),
                    visible(client.blob_name))
        return
    build_intake(settings).process(client.blob_name)
