"""Build the import's parts from settings (used by the functions, the demo, the CLI and the tests)."""

from __future__ import annotations

from shared.importing.dry_run import DropZone
from shared.importing.intake import Intake
from shared.platform.config import Settings
from shared.platform.storage import blob_service
from shared.targets.factory import connector_factory


def build_intake(settings: Settings) -> Intake:
    return Intake(settings, blob_service(settings), connector_factory(settings))


def build_drop_zone(settings: Settings) -> DropZone:
    return DropZone(settings, blob_service(settings), connector_factory(settings))
