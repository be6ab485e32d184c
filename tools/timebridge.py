"""TimeBridge operator CLI: see and steer TimeBridge from a terminal, with the function app's settings.

    timebridge validate FILE [--offline] [--all-lines] [--limit N]
    timebridge match FILE
    timebridge status [--limit N]
    timebridge export
    timebridge resubmit FILE [--name NAME]
    timebridge doctor [--all-settings] [--probe]
    timebridge init

Every command takes --json. Settings are read exactly as the function app reads them (app settings
as environment variables); ``--settings local.settings.json`` (the default when that file exists in
the current folder) loads its ``Values`` first, as the Functions host does locally. Variables
already set in the environment win. Settings are read only when a command needs them.

A problem is one ``Error: … What to do: …`` line on stderr (with --json also a JSON object on
stdout), the traceback only with --debug. Exit codes: 0 ok, 1 lines would be rejected, 2 usage,
3 configuration, 4 storage or target unreachable or failed, 5 internal error (130: Ctrl+C).

Installed as the ``timebridge`` command (scripts/bootstrap); ``python -m tools.timebridge`` works too.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from tools.cli_support import (
    CONFIGURATION,
    INTERNAL,
    OK,
    OPERATIONAL,
    USAGE,
    CliError,
    dumps,
    one_line,
)

PROG = "timebridge"
#: Ctrl+C, as shells report it (128 + SIGINT)
STOPPED = 130


def version() -> str:
    """The installed distribution's version; pyproject.toml's when run from a checkout uninstalled."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("timebridge")
    except PackageNotFoundError:
        import tomllib

        with (Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])


@dataclass
class App:
    """Per invocation: the options of the group and the settings, read on first use."""

    settings_path: Path | None = None
    json: bool = False
    loaded: bool = False
    cache: dict[str, Any] = field(default_factory=dict)

    def load_environment(self) -> None:
        if not self.loaded:
            from tools.cli_support import load_local_settings

            load_local_settings(self.settings_path)
            self.loaded = True

    def settings(self) -> Any:
        if "settings" not in self.cache:
            from tools.cli_support import load_settings

            self.load_environment()
            self.cache["settings"] = load_settings()
        return self.cache["settings"]


def _app(ctx: click.Context) -> App:
    app: App = ctx.find_object(App) or App()
    return app


def _json(ctx: click.Context, as_json: bool) -> bool:
    return as_json or _app(ctx).json


def _emit(as_json: bool, data: Any, text: str) -> None:
    click.echo(dumps(data) if as_json else text)


def _progress(label: str, length: int, quiet: bool) -> Any:
    """A progress bar on stderr when it is a terminal (never in --json output or a pipe)."""
    from contextlib import nullcontext

    if quiet or not sys.stderr.isatty():
        return nullcontext(None)
    return click.progressbar(length=length, label=one_line(label), file=sys.stderr)


json_option = click.option("--json", "as_json", is_flag=True, help="print JSON (errors too)")


@click.group(help=__doc__.split("\n\n")[0], context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--settings", "settings_path", type=click.Path(path_type=Path, dir_okay=False),
              help="local.settings.json to load (default: ./local.settings.json when it exists)")
@click.option("--json", "as_json", is_flag=True, help="print JSON (every command, errors too)")
@click.option("--debug", is_flag=True, help="show the traceback of an error, and log lines")
@click.version_option(version(), "--version", prog_name=PROG, message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, settings_path: Path | None, as_json: bool, debug: bool) -> None:
    ctx.obj = App(settings_path=settings_path, json=as_json)


@cli.command(help="Dry run of a local file: what it would do to the target, with reads only. "
                  "Exit 0: no line would be rejected; 1: lines would be; 3/4: the file could not be checked.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--offline", is_flag=True, help="check the file only; do not ask the target (needs no other setting)")
@click.option("--all-lines", is_flag=True, help="list every line, not only the rejected ones")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(min=0),
              help="at most this many line entries (0: no limit)")
@json_option
@click.pass_context
def validate(ctx: click.Context, file: Path, offline: bool, all_lines: bool, limit: int, as_json: bool) -> int:
    from tools.cli_validate import run_validate

    as_json = _json(ctx, as_json)
    _app(ctx).load_environment()
    size = file.stat().st_size

    def progress(read: Callable[[], Iterator[bytes]]) -> Iterator[bytes]:
        with _progress(f"Reading {file.name}", size, as_json) as bar:
            for chunk in read():
                if bar is not None:
                    bar.update(len(chunk))
                yield chunk

    outcome = run_validate(file, offline=offline, all_lines=all_lines, limit=limit, progress=progress)
    _emit(as_json, outcome.data, outcome.text)
    if outcome.problem is not None and outcome.problem.exit_code != 1:
        click.echo(outcome.problem.error().line(), err=True)
    return outcome.exit_code


@cli.command(help="Matching readiness, before the first import: how the file's codes match the target's "
                  "records (by code, cross-reference or name), what would be created, what has no ERP code. "
                  "Reads only. Exit 0: ready; 1: not ready; 3/4: the report could not be made.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def match(ctx: click.Context, file: Path, as_json: bool) -> int:
    from tools.cli_match import run_match

    as_json = _json(ctx, as_json)
    _app(ctx).load_environment()
    outcome = run_match(file)
    _emit(as_json, outcome.data, outcome.text)
    return outcome.exit_code


@cli.command(help="Recent imports, an open export intent, deferrals and the call budget.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1),
              help="how many recent imports to show")
@json_option
@click.pass_context
def status(ctx: click.Context, limit: int, as_json: bool) -> int:
    import json

    from shared.export.ledger_table import ExportLedger
    from shared.importing.deferral import Deferrals
    from shared.importing.intake import connect
    from shared.platform.safe_text import visible
    from shared.platform.storage import blob_service
    from shared.targets.factory import connector_factory
    from shared.targets.registry import target_spec
    from tools.cli_support import require_storage, storage_errors

    as_json = _json(ctx, as_json)
    settings = _app(ctx).settings()
    require_storage(settings, [settings.archive_container])
    with storage_errors(settings):
        service = blob_service(settings)
        archive = service.get_container_client(settings.archive_container)
        receipts = sorted((b for b in archive.list_blobs() if b.name.endswith("/receipt.json")),
                          key=lambda b: b.last_modified, reverse=True)[:limit]
        imports = []
        for blob in receipts:
            receipt = json.loads(archive.download_blob(blob.name).readall())
            imports.append({key: receipt.get(key) for key in ("source", "status", "counts", "finished_at", "folder")})
        intent = ExportLedger.connect(settings).read_state().intent
        pending = Deferrals(service, settings.archive_container, settings.target_system).entries()
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
        "target": target_spec(settings.target_system).display_name,
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
        lines.append(f"  {visible(item['finished_at'])}  {visible(item['status']):<22} {visible(item['source'])}  "
                     + ", ".join(f"{visible(k)} {visible(v)}" for k, v in counts.items()))
    lines.append("")
    lines.append("Open export intent: none" if intent is None else
                 f"Open export intent: run {visible(intent.run_id)} ({visible(intent.file_name)}), "
                 f"{intent.status.value} since {intent.created_at} — the next export run completes it")
    if pending:
        lines.append(f"Pending deferrals ({len(pending)}):")
        lines += [f"  {visible(item['file'])}: {item['lines_waiting']} lines wait, next attempt after "
                  f"{visible(item['next_attempt_after'])}" for item in waiting]
    else:
        lines.append("Pending deferrals: none")
    if problem:
        lines.append(f"Call budget: unknown ({visible(problem)})")
    else:
        lines.append("Call budget: not limited for this target" if remaining is None else
                     f"Call budget: {remaining} calls left in the rolling 24 hours")
    _emit(as_json, data, "\n".join(lines))
    return OK


@cli.command(help="Run the ledger export now (the same run the timer makes).")
@json_option
@click.pass_context
def export(ctx: click.Context, as_json: bool) -> int:
    from shared.export import run_export
    from tools.cli_support import require_storage, storage_errors

    as_json = _json(ctx, as_json)
    settings = _app(ctx).settings()
    require_storage(settings, [settings.output_container, settings.export_state_container])
    if not as_json:
        click.echo("Exporting…", err=True)
    with storage_errors(settings):
        receipt = run_export(settings)
    if receipt is None:
        _emit(as_json, {"status": "nothing-new"}, "Nothing new to export (or another run holds the export lock).")
    else:
        _emit(as_json, receipt.model_dump(mode="json"), "\n".join(map(one_line, receipt.summary().splitlines())))
    return OK


@cli.command(help="Upload a (corrected) file, e.g. a rejected-lines file, to the input container.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="blob name in the input container (default: the file name)")
@json_option
@click.pass_context
def resubmit(ctx: click.Context, file: Path, name: str | None, as_json: bool) -> int:
    from azure.core.exceptions import ResourceExistsError

    from shared.platform.storage import blob_service
    from tools.cli_support import check_blob_name, require_storage, storage_errors

    as_json = _json(ctx, as_json)
    blob_name = check_blob_name(name or file.name)
    settings = _app(ctx).settings()
    require_storage(settings, [settings.input_container])
    size = file.stat().st_size
    with storage_errors(settings):
        blob = blob_service(settings).get_blob_client(settings.input_container, blob_name)
        with file.open("rb") as handle, _progress(f"Uploading {file.name}", size, as_json) as bar:
            done = 0

            def progress(current: int, total: int | None) -> None:
                nonlocal done
                if bar is not None:
                    bar.update(current - done)
                done = current

            try:
                blob.upload_blob(handle, length=size, overwrite=False, progress_hook=progress)
            except ResourceExistsError:
                raise CliError(
                    f"{one_line(blob_name)} is already in the input container and not yet imported.",
                    "wait for its import (timebridge status), or give this upload another --name", OPERATIONAL,
                    "already-waiting") from None
    data = {"status": "uploaded", "file": str(file), "container": settings.input_container, "name": blob_name,
            "bytes": size}
    _emit(as_json, data, f"Uploaded {one_line(file.name)} to {settings.input_container}/{one_line(blob_name)}; "
                         "the import starts by itself.")
    return OK


@cli.command(help="Check the settings in effect, storage, the secrets, the target and its budget, and "
                  "pending deferrals. Writes no data (for Tic-Tac the first run creates the budget and "
                  "cross-reference tables, as the first import would); never prints a secret.")
@click.option("--all-settings", is_flag=True, help="list every setting, not only those changed from the default")
@click.option("--probe", is_flag=True, help="also check Tic-Tac's API guesses against the live target "
                                            "(2 more calls, reads only): holds / differs / cannot tell")
@json_option
@click.pass_context
def doctor(ctx: click.Context, all_settings: bool, probe: bool, as_json: bool) -> int:
    from tools.cli_doctor import doctor_data, doctor_text, run_doctor

    as_json = _json(ctx, as_json)
    checks, settings, findings = run_doctor(_app(ctx).settings(), probe)
    data = doctor_data(checks, settings, findings)
    _emit(as_json, data, doctor_text(checks, settings, all_settings, findings))
    for check in checks:
        if check.status == "problem":
            click.echo(CliError(check.detail, check.what_to_do, check.exit_code, "doctor").line(), err=True)
    return int(data["exit_code"])


@cli.command(help="Create the containers and tables TimeBridge uses (local storage such as Azurite); "
                  "what exists already is left as it is.")
@json_option
@click.pass_context
def init(ctx: click.Context, as_json: bool) -> int:
    from tools.cli_doctor import run_init

    as_json = _json(ctx, as_json)
    result = run_init(_app(ctx).settings())
    text = [f"Storage {result['storage']}:"]
    text += [f"  created {item}" for item in result["created"]]
    text.append(f"  {len(result['already_there'])} already there" if result["already_there"] else "")
    _emit(as_json, result, "\n".join(line for line in text if line))
    return OK


# --- errors ---------------------------------------------------------------------------------------
def _as_cli_error(exc: BaseException, args: list[str]) -> CliError:
    from shared.errors import ConfigurationError, MissingSecretError, SecretStoreUnavailableError, TimeBridgeError
    from tools.cli_support import configuration_error

    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, click.UsageError):
        command = exc.ctx.command_path if exc.ctx else PROG
        return CliError(exc.format_message(), f"see `{command} --help`", USAGE, "usage")
    if isinstance(exc, click.Abort | KeyboardInterrupt):
        return CliError("Stopped (Ctrl+C).", "run the command again to finish it", STOPPED, "stopped")
    if isinstance(exc, click.ClickException):
        return CliError(exc.format_message(), f"see `{PROG} --help`", USAGE, "usage")
    if isinstance(exc, ConfigurationError | MissingSecretError | SecretStoreUnavailableError):
        return configuration_error(exc)
    if isinstance(exc, TimeBridgeError):
        return CliError(str(exc), "run the command again; if it fails again, run it with --debug", OPERATIONAL,
                        "failed")
    from azure.core.exceptions import AzureError

    if isinstance(exc, AzureError):
        from tools.cli_support import storage_error

        return storage_error(exc, "the storage account")
    return CliError(f"TimeBridge stopped on an unexpected error ({type(exc).__name__}: {exc}).",
                    f"run `{PROG} {' '.join(args)} --debug` and send the output to TimeBridge support",
                    INTERNAL, "internal")


def _configure_logging(debug: bool) -> None:
    root = logging.getLogger()
    if debug:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    else:  # the library's log lines are for the function app's log stream, not this terminal
        root.addHandler(logging.NullHandler())
        logging.getLogger("azure").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None, prog_name: str = PROG) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    options = args[: args.index("--")] if "--" in args else args
    as_json, debug = "--json" in options, "--debug" in options
    try:
        result = cli.main(args, prog_name=prog_name, standalone_mode=False)
        return result if isinstance(result, int) else OK
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BaseException as exc:  # every error ends as one line (and JSON with --json)
        if isinstance(exc, SystemExit):
            raise
        error = _as_cli_error(exc, args)
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        if as_json:
            click.echo(dumps(error.as_json()))
        click.echo(error.line(), err=True)
        return error.exit_code


def entry(prog_name: str = PROG) -> None:
    """The ``timebridge`` console command (pyproject.toml [project.scripts]): the process's logging is
    set up here, not in :func:`main`, which tests call in-process."""
    _configure_logging("--debug" in sys.argv[1:])
    sys.exit(main(prog_name=prog_name))


__all__ = ["CONFIGURATION", "App", "cli", "entry", "main"]

if __name__ == "__main__":
    entry("python -m tools.timebridge")
