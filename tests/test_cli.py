"""The operator CLI against Azurite and the SmartAPI sandbox (real sockets), in-process via click."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import Sandbox, blob_names, read_blob
from tests.functions_host import trigger_import
from tools.timebridge import cli

FILE = b"Employee;1001;Jens Hansen;CLI vej 1\r\nEmployee;C900;New From Cli\r\nJobb;typo\r\n"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_validate_plans_against_the_target_with_reads_only(app_env, storage, sandbox: Sandbox, tmp_path: Path) -> None:
    file = tmp_path / "plan.csv"
    file.write_bytes(FILE)

    code, out = run("validate", str(file), "--json")

    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    assert [(line["line"], line["action"]) for line in report["lines"]] == [(1, "update"), (2, "create"), (3, "reject")]
    assert sandbox.writes() == {} and report["reads"] >= 1


def test_validate_offline_checks_the_file_without_calling_the_target(app_env, storage, sandbox, tmp_path) -> None:
    file = tmp_path / "offline.csv"
    file.write_bytes(FILE)

    code, out = run("validate", str(file), "--offline")

    assert code == 0, out
    assert "readable 2, reject 1" in out and "line 3 (Jobb)" in out
    assert sandbox.calls() == {}


def test_an_unreadable_file_is_a_clear_error_not_a_trace(app_env, storage, sandbox, tmp_path) -> None:
    file = tmp_path / "commas.csv"
    file.write_bytes(b"Employee,1,Comma")

    result = CliRunner().invoke(cli, ["validate", str(file), "--offline"])

    assert result.exit_code == 1
    assert "looks separated by commas" in result.output and "Traceback" not in result.output


def test_resubmit_uploads_to_the_input_container_and_never_overwrites(app_env, settings, storage, sandbox,
                                                                      tmp_path) -> None:
    file = tmp_path / "fixed.rejected.csv"
    file.write_bytes(b"Employee;C901;Fixed Line\r\n")

    code, out = run("resubmit", str(file))
    assert code == 0, out
    assert read_blob(storage, settings.input_container, "fixed.rejected.csv") == file.read_bytes()

    again = CliRunner().invoke(cli, ["resubmit", str(file)])
    assert again.exit_code == 1 and "already in the input container" in again.output


def test_status_lists_recent_imports_and_export_runs_now(app_env, settings, storage, sandbox) -> None:
    storage.get_blob_client(settings.input_container, "seen.csv").upload_blob(b"Employee;C902;Seen")
    trigger_import(storage, settings.input_container, "seen.csv")

    code, out = run("status", "--json")
    assert code == 0, out
    status = json.loads(out)
    assert [item["source"] for item in status["recent_imports"]] == ["seen.csv"]
    assert status["recent_imports"][0]["counts"]["created"] == 1
    assert status["open_export_intent"] is None

    code, out = run("export", "--json")
    assert code == 0, out
    receipt = json.loads(out[out.index("{"):])
    assert receipt["status"] == "exported" and receipt["counts"]["lines"] >= 1
    assert blob_names(storage, settings.output_container)


def test_validate_offline_for_tic_tac_names_tic_tac_in_value_errors(app_env, storage, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TARGET_SYSTEM", "tictac")
    file = tmp_path / "long.csv"
    file.write_bytes(f"Job;P-1;{'x' * 51}\r\nEmployee;1;Anders Alm\r\n".encode())

    code, out = run("validate", str(file), "--offline")

    assert code == 0, out
    assert "line 1 (Job)" in out and "Tic-Tac allows at most 50" in out and "SmartTID" not in out
