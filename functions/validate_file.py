"""Blob trigger: a file dropped in the validate container gets a dry-run report beside it.

Reads only — nothing is written to the target, nothing is imported; the file is removed once its
report is stored (:mod:`shared.importing.dry_run`).
"""

from __future__ import annotations

import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("validate_file")
@bp.blob_trigger(
    arg_name="client",
    path="%VALIDATE_CONTAINER%/{name}",
    connection="IntegrationStorage",
    source=func.BlobSource.EVENT_GRID,
)
def validate_file(client: blob.BlobClient) -> None:
    from shared.targets.registry import load_all_settings
    from shared.wiring import build_drop_zone

    build_drop_zone(load_all_settings()).process(client.blob_name)
