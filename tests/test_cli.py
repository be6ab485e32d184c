"""The operator CLI against Azurite and the SmartAPI sandbox (real sockets), in-process through its
entry point (tests/test_cli_process.py runs the installed command as a separate process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Sandbox, blob_names, read_blob
from tests.functions_host import trigger_import
from tools.timebridge import main

FILE = b"Employee;1001;Jens Hansen;CLI vej 1\r\nEmployee;C900;New From Cli\r\nJobb;typo\r\n"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    def invoke(*args: str) -> tuple[int, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out + captured.err
    return invoke


def test_validate_plans_against_the_target_with_reads_only(run, app_env, storage, sandbox: Sandbox,
                                                           tmp_path: Path) -> None:
    file = tmp_path / "plan.csv"
    file.write_bytes(FILE)

    code, out = run("validate", str(file), "--json", "--all-lines")

    assert code == 1, out  # a line would be rejected
    report = json.loads(out)
    assert [(line["line"], line["action"]) for line in report["lines"]] == [(1, "update"), (2, "create"), (3, "reject")]
    assert sandbox.writes() == {} and report["reads"] >= 1


def test_validate_offline_checks_the_file_without_calling_the_target(run, app_env, storage, sandbox, tmp_path) -> None:
    file = tmp_path / "offline.csv"
    file.write_bytes(FILE)

    code, out = run("validate", str(file), "--offline")

    assert code == 1, out
    assert "readable 2, reject 1" in out and "line 3 (Jobb)" in out
    assert sandbox.calls() == {}


def test_an_unreadable_file_is_a_clear_error_not_a_trace(run, app_env, storage, sandbox, tmp_path) -> None:
    file = tmp_path / "commas.csv"
    file.write_bytes(b"Employee,1,Comma")

    code, out = run("validate", str(file), "--offline")

    assert code == 1
    assert "looks separated by commas" in out and "Traceback" not in out
    assert "The whole file would be rejected" in out

    code, out = run("validate", str(file), "--offline", "--json")
    assert code == 1 and json.loads(out)["file_problem"]["code"] == "file-unreadable"


def test_resubmit_uploads_to_the_input_container_and_never_overwrites(run, app_env, settings, storage, sandbox,
                                                                      tmp_path) -> None:
    file = tmp_path / "fixed.rejected.csv"
    file.write_bytes(b"Employee;C901;Fixed Line\r\n")

    code, out = run("resubmit", str(file))
    assert code == 0, out
    assert read_blob(storage, settings.input_container, "fixed.rejected.csv") == file.read_bytes()

    code, out = run("resubmit", str(file))
    assert code == 4 and "already in the input container" in out


def test_status_lists_recent_imports_and_export_runs_now(run, app_env, settings, storage, sandbox) -> None:
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
    receipt = json.loads(out)
    assert receipt["status"] == "exported" and receipt["counts"]["lines"] >= 1
    assert blob_names(storage, settings.output_container)


def test_validate_offline_for_tic_tac_names_tic_tac_in_value_errors(run, app_env, storage, tmp_path,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("TARGET_SYSTEM", "tictac")
    file = tmp_path / "long.csv"
    file.write_bytes(f"Job;P-1;{'x' * 51}\r\nEmployee;1;Anders Alm\r\n".encode())

    code, out = run("validate", str(file), "--offline")

    assert code == 1, out
    assert "line 1 (Job)" in out and "Tic-Tac allows at most 50" in out and "SmartTID" not in out
