"""Build the import's parts from settings (used by the functions, the demo, the CLI and the tests)."""

from __future__ import annotations

from shared.importing.dry_run import DropZone
from shared.importing.intake import Intake
from shared.platform.config import Settings
from shared.platform.storage import blob_service, ensure_containers, ensure_tables, table_service
from shared.targets.factory import connector_factory


def build_intake(settings: Settings) -> Intake:
    return Intake(settings, blob_service(settings), connector_factory(settings))


def build_drop_zone(settings: Settings) -> DropZone:
    return DropZone(settings, blob_service(settings), connector_factory(settings))


def prepare_storage(settings: Settings) -> list[str]:
    """Local set-up (the CLI's ``init``, the demo, the benchmarks, the tests): create the six containers
    and the tables the app uses. In Azure infra/ creates them, and the app never does at run time.
    Returns the tables created."""
    ensure_containers(blob_service(settings), settings.containers)
    return ensure_tables(table_service(settings), settings.tables)
