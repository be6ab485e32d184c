"""TimeBridge operator CLI: see and steer TimeBridge from a terminal, with the function app's settings.

    python -m tools.timebridge init
    python -m tools.timebridge validate FILE [--offline] [--json]
    python -m tools.timebridge status [--json] [--limit N]
    python -m tools.timebridge export [--json]
    python -m tools.timebridge resubmit FILE [--name NAME]

Settings are read exactly as the function app reads them (app settings as environment variables);
``--settings local.settings.json`` (the default when that file exists) loads its ``Values`` first,
as the Functions host does locally. Variables already set in the environment win.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from shared.errors import ConfigurationError
from shared.platform.config import Settings, load_settings

CHUNK = 256 * 1024


def _load_local_settings(path: Path | None) -> None:
    candidate = path or Path("local.settings.json")
    if not candidate.exists():
        if path is not None:
            raise click.BadParameter(f"{path} does not exist", param_hint="--settings")
        return
    try:
        values = json.loads(candidate.read_text(encoding="utf-8")).get("Values", {})
    except ValueError as exc:
        raise click.BadParameter(f"{candidate} is not valid JSON ({exc})", param_hint="--settings") from None
    for name, value in values.items():
        os.environ.setdefault(name, str(value))


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str) if as_json else text)


@click.group(help=__doc__.split("\n\n")[0])
@click.option("--settings", "settings_path", type=click.Path(path_type=Path, dir_okay=False),
              help="local.settings.json to load (default: ./local.settings.json when it exists)")
@click.pass_context
def cli(ctx: click.Context, settings_path: Path | None) -> None:
    _load_local_settings(settings_path)
    try:
        ctx.obj = load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command(help="Local set-up: create the containers and tables the app uses (Azurite; in Azure infra/ does).")
@click.pass_context
def init(ctx: click.Context) -> None:
    from shared.wiring import prepare_storage

    settings = _settings(ctx)
    created = prepare_storage(settings)
    click.echo(f"containers: {', '.join(settings.containers)}")
    click.echo(f"tables: {', '.join(settings.tables)} ({len(created)} created, the others were there or "
               "may not be created with this identity)")


@cli.command(help="Dry run of a local file: what it would do to the target, with reads only.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--offline", is_flag=True, help="check the file only; do not ask the target")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.pass_context
def validate(ctx: click.Context, file: Path, offline: bool, as_json: bool) -> None:
    from shared.errors import UnreadableFile
    from shared.importing.dry_run import dry_run, offline_report
    from shared.importing.intake import connect
    from shared.importing.parsing import parse_file
    from shared.targets.factory import connector_factory

    settings = _settings(ctx)
    target = settings.target_system.display_name
    connector, problem = (None, "") if offline else connect(connector_factory(settings), file.name)
    size = file.stat().st_size

    def chunks() -> Iterator[bytes]:
        with file.open("rb") as handle, click.progressbar(length=size, label=f"Reading {file.name}",
                                                          file=sys.stderr) as bar:
            while chunk := handle.read(CHUNK):
                bar.update(len(chunk))
                yield chunk

    try:
        try:
            parsed = parse_file(chunks, fold_codes=connector.codes_case_insensitive if connector else True,
                                target=target)
        except UnreadableFile as exc:
            raise click.ClickException(
                f"{file.name} cannot be imported: {exc.reason}. What to do: {exc.action}.") from None
        if offline:
            report = offline_report(parsed, source=file.name, target=target)
        else:
            report = dry_run(parsed, connector, problem, source=file.name, target=target,
                             concurrency=settings.write_concurrency, send_cpr_number=settings.send_cpr_number)
    finally:
        if connector is not None:
            connector.close()
    if as_json:
        click.echo(report.to_json().decode("utf-8"))
    else:
        click.echo(report.to_text().decode("utf-8-sig"))


@cli.command(help="Recent imports, an open export intent, deferrals and the call budget.")
@click.option("--limit", default=10, show_default=True, help="how many recent imports to show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, limit: int, as_json: bool) -> None:
    from shared.export.ledger_table import ExportLedger
    from shared.importing.deferral import Deferrals
    from shared.importing.intake import connect
    from shared.platform.storage import blob_service
    from shared.targets.factory import connector_factory

    settings = _settings(ctx)
    service = blob_service(settings)
    archive = service.get_container_client(settings.archive_container)
    receipts = sorted((b for b in archive.list_blobs() if b.name.endswith("/receipt.json")),
                      key=lambda b: b.last_modified, reverse=True)[:limit]
    imports = []
    for blob in receipts:
        receipt = json.loads(archive.download_blob(blob.name).readall())
        imports.append({key: receipt.get(key) for key in ("source", "status", "counts", "finished_at", "folder")})
    intent = ExportLedger.connect(settings).read_state().intent
    pending = Deferrals(service, settings.archive_container, settings.target_system.value).entries()
    connector, problem = connect(connector_factory(settings), "status")
    try:
        remaining = connector.remaining_calls() if connector else None
    finally:
        if connector is not None:
            connector.close()
    waiting = [{"file": entry.source, "lines_waiting": entry.waiting,
                "next_attempt_after": entry.next_attempt_after or "the next run",
                "queued_behind": entry.queued_behind} for entry in pending]
    data: dict[str, Any] = {
        "target": settings.target_system.display_name,
        "recent_imports": imports,
        "open_export_intent": None if intent is None else {
            "run_id": intent.run_id, "file": intent.file_name, "since": intent.created_at,
            "status": intent.status.value},
        "pending_deferrals": waiting,
        "call_budget": None if remaining is None else {"remaining_calls": remaining},
        "problem": problem,
    }
    lines = [f"Target: {data['target']}", "", f"Recent imports ({len(imports)}):"]
    for item in imports:
        counts = item["counts"] or {}
        lines.append(f"  {item['finished_at']}  {item['status']:<22} {item['source']}  "
                     + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append("")
    lines.append("Open export intent: none" if intent is None else
                 f"Open export intent: run {intent.run_id} ({intent.file_name}), {intent.status.value} since "
                 f"{intent.created_at} — the next export run completes it")
    if pending:
        lines.append(f"Pending deferrals ({len(pending)}):")
        lines += [f"  {item['file']}: {item['lines_waiting']} lines wait, next attempt after "
                  f"{item['next_attempt_after']}" for item in waiting]
    else:
        lines.append("Pending deferrals: none")
    if problem:
        lines.append(f"Call budget: unknown ({problem})")
    else:
        lines.append("Call budget: not limited for this target" if remaining is None else
                     f"Call budget: {remaining} calls left in the rolling 24 hours")
    _emit(data, as_json, "\n".join(lines))


@cli.command(help="Run the ledger export now (the same run the timer makes).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def export(ctx: click.Context, as_json: bool) -> None:
    from dataclasses import asdict

    from shared.export import run_export

    click.echo("Exporting…", err=True)
    receipt = run_export(_settings(ctx))
    if receipt is None:
        _emit({"status": "nothing-new"}, as_json, "Nothing new to export (or another run holds the export lock).")
    else:
        _emit(asdict(receipt), as_json, receipt.summary())


@cli.command(help="Upload a (corrected) file, e.g. a rejected-lines file, to the input container.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="blob name in the input container (default: the file name)")
@click.pass_context
def resubmit(ctx: click.Context, file: Path, name: str | None) -> None:
    from azure.core.exceptions import ResourceExistsError

    from shared.platform.storage import blob_service

    settings = _settings(ctx)
    blob = blob_service(settings).get_blob_client(settings.input_container, name or file.name)
    size = file.stat().st_size
    with file.open("rb") as handle, click.progressbar(length=size, label=f"Uploading {file.name}",
                                                      file=sys.stderr) as bar:
        done = 0

        def progress(current: int, total: int | None) -> None:
            nonlocal done
            bar.update(current - done)
            done = current

        try:
            blob.upload_blob(handle, length=size, overwrite=False, progress_hook=progress)
        except ResourceExistsError:
            raise click.ClickException(
                f"{blob.blob_name} is already in the input container and not yet imported; wait for its "
                "import, or give this upload another --name") from None
    click.echo(f"Uploaded {file.name} to {settings.input_container}/{blob.blob_name}; the import starts by itself.")


if __name__ == "__main__":
    cli(prog_name="python -m tools.timebridge")
