"""The installed ``timebridge`` command as an administrator meets it: a separate process, started
from another folder, some runs in a pseudo-terminal; exit codes and the one-line error."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from shared.targets.registry import all_setting_names
from tests.conftest import Sandbox, TicTacSandbox
from tools.services import DEV_ACCOUNT, DEV_KEY, free_port

ROOT = Path(__file__).resolve().parent.parent
TIMEBRIDGE = Path(sys.executable).parent / "timebridge"
#: a guard against a hung process, not a timing assertion
GUARD_SECONDS = 120
SECRETS = ("SMARTTID_API_KEY", "SMARTTID_CUSTOMER_KEY", "TICTAC_API_CODE")
HOSTILE = "evil\x1b]0;pwned\x07\nImported: forged.csv"
SHOWN = "evil\\x1b]0;pwned\\x07\\nImported: forged.csv"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one line on stderr (asserted to be exactly one)."""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("Error: ") and " What to do: " in lines[0], lines[0]
        assert "Traceback" not in self.err + self.out
        return lines[0]


def clean_env(**values: str) -> dict[str, str]:
    """The environment without any TimeBridge setting or secret, plus ``values``."""
    names = all_setting_names() | set(SECRETS)
    env = {name: value for name, value in os.environ.items() if name not in names}
    return env | values


def run(*args: str, env: dict[str, str] | None = None, cwd: Path) -> Run:
    result = subprocess.run([str(TIMEBRIDGE), *args], capture_output=True, env=env or dict(os.environ), cwd=cwd,
                            timeout=GUARD_SECONDS, check=False)
    return Run(result.returncode, result.stdout.decode("utf-8"), result.stderr.decode("utf-8"))


def run_in_terminal(*args: str, env: dict[str, str] | None = None, cwd: Path) -> tuple[int, str]:
    """Run with stdin, stdout and stderr on a pseudo-terminal; the raw text it showed (CR LF → LF)."""
    master, slave = os.openpty()
    process = subprocess.Popen([str(TIMEBRIDGE), *args], stdin=slave, stdout=slave, stderr=slave,
                               env=env or dict(os.environ), cwd=cwd, close_fds=True)
    os.close(slave)
    shown = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], GUARD_SECONDS)
            if not ready:
                process.kill()
                raise AssertionError(f"no output within {GUARD_SECONDS} s: {shown!r}")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            shown += data
    finally:
        os.close(master)
    return process.wait(timeout=GUARD_SECONDS), shown.decode("utf-8").replace("\r\n", "\n")


def unreachable_storage() -> str:
    port = free_port()  # nothing listens there
    return (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};TableEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};")


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    file = tmp_path / "plan.csv"
    file.write_bytes(b"Employee;1001;Jens Hansen;CLI vej 1\r\nEmployee;C900;New From Cli\r\nJobb;typo\r\n")
    return file


# --- the command itself ------------------------------------------------------------------------------
def test_version_in_a_terminal_from_another_folder(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

    code, shown = run_in_terminal("--version", cwd=tmp_path, env=clean_env())

    assert code == 0 and shown.strip() == f"timebridge {version}"


def test_help_and_offline_validate_need_no_unrelated_setting(tmp_path: Path, csv: Path) -> None:
    env = clean_env(EXPORT_SCHEDULE="every day", TICTAC_WORKTYPE_MAP="nonsense")
    good = tmp_path / "good.csv"
    good.write_bytes(b"Employee;1001;Jens Hansen\r\n")

    assert run("--help", env=env, cwd=tmp_path).code == 0
    helped = run("validate", "--help", env=env, cwd=tmp_path)
    assert helped.code == 0 and "--offline" in helped.out
    code, shown = run_in_terminal("validate", str(good), "--offline", env=env, cwd=tmp_path)
    assert code == 0 and "Result: no line would be rejected (exit code 0)" in shown and "Error" not in shown
    rejected = run("validate", str(csv), "--offline", env=env, cwd=tmp_path)
    assert rejected.code == 1 and "Line 3 (Jobb): reject" in rejected.out and rejected.err == ""

    broken = run("status", env=env | {"IntegrationStorage": "UseDevelopmentStorage=true"}, cwd=tmp_path)
    assert broken.code == 3
    line = broken.error_line()
    assert "EXPORT_SCHEDULE is 'every day'" in line and "What to do: Fix the app setting" in line


def test_no_storage_setting_is_one_line_and_exit_3(tmp_path: Path, csv: Path) -> None:
    env = clean_env()

    result = run("status", env=env, cwd=tmp_path)

    assert result.code == 3 and result.out == ""
    assert result.error_line().startswith("Error: No storage is configured")
    assert run("resubmit", str(csv), env=env, cwd=tmp_path).code == 3
    code, shown = run_in_terminal("status", env=env, cwd=tmp_path)
    assert code == 3 and shown.count("\n") == 1 and shown.startswith("Error: No storage is configured")


def test_storage_that_cannot_be_reached_fails_at_once_with_exit_4(tmp_path: Path, csv: Path) -> None:
    env = clean_env(IntegrationStorage=unreachable_storage())

    result = run("status", env=env, cwd=tmp_path)

    assert result.code == 4
    line = result.error_line()
    assert "cannot be reached (connection refused)" in line and "What to do: start Azurite" in line
    assert DEV_KEY not in line
    assert run("resubmit", str(csv), env=env, cwd=tmp_path).code == 4
    debug = run("--debug", "status", env=env, cwd=tmp_path)
    assert debug.code == 4 and "Traceback" in debug.err and debug.err.rstrip().splitlines()[-1].startswith("Error: ")
    as_json = run("--json", "status", env=env, cwd=tmp_path)
    assert as_json.code == 4 and json.loads(as_json.out)["error"]["code"] == "storage-unreachable"
    code, shown = run_in_terminal("resubmit", str(csv), env=env, cwd=tmp_path)
    assert code == 4 and shown.count("\n") == 1 and "cannot be reached" in shown


def test_fresh_storage_without_containers_suggests_init(app_env: dict[str, str], sandbox: Sandbox,
                                                        tmp_path: Path) -> None:
    service = BlobServiceClient.from_connection_string(app_env["IntegrationStorage"])
    try:
        result = run("status", cwd=tmp_path)
        assert result.code == 3
        line = result.error_line()
        assert "is not set up for TimeBridge" in line and app_env["ARCHIVE_CONTAINER"] in line
        assert "run `timebridge init`" in line

        created = run("init", "--json", cwd=tmp_path)
        assert created.code == 0, created.err
        assert f"container {app_env['INPUT_CONTAINER']}" in json.loads(created.out)["created"]
        again = run("init", cwd=tmp_path)
        assert again.code == 0 and "already there" in again.out and "created" not in again.out
        assert run("status", cwd=tmp_path).code == 0
    finally:
        for name in ("INPUT", "OUTPUT", "ERROR", "ARCHIVE", "VALIDATE", "EXPORT_STATE"):
            container = service.get_container_client(app_env[f"{name}_CONTAINER"])
            if container.exists():
                container.delete_container()


# --- names -------------------------------------------------------------------------------------------
def test_hostile_file_names_are_escaped_in_a_terminal_and_in_json(tmp_path: Path) -> None:
    file = tmp_path / f"{HOSTILE}.csv"
    file.write_bytes(b"Employee;1001;Jens Hansen\r\nJobb;typo\r\n")
    env = clean_env()

    code, shown = run_in_terminal("validate", str(file), "--offline", env=env, cwd=tmp_path)

    assert code == 1
    # the progress bar's own escape sequences (cursor, carriage return) aside: the name's are escaped
    assert "\x1b]0;" not in shown and "\x07" not in shown and "\nImported: forged" not in shown
    assert f"Reading {SHOWN}.csv" in shown
    assert f"File:      {SHOWN}.csv" in shown
    as_json = run("validate", str(file), "--offline", "--json", env=env, cwd=tmp_path)
    assert as_json.code == 1 and "\x1b" not in as_json.out and "\x07" not in as_json.out
    assert json.loads(as_json.out)["file"] == f"{HOSTILE}.csv"

    named = run("resubmit", str(file), env=env, cwd=tmp_path)
    assert named.code == 2 and "\x1b" not in named.err
    assert f'"{SHOWN}.csv" holds control or invisible characters' in named.error_line()


def test_resubmit_refuses_a_path_that_climbs_out(app_env, storage, tmp_path: Path, csv: Path) -> None:
    result = run("resubmit", str(csv), "--name", "../../etc/passwd", cwd=tmp_path)

    assert result.code == 2
    assert result.error_line().startswith('Error: The blob name "../../etc/passwd" has a "." or ".." path segment')
    assert "HttpResponseError" not in result.err
    as_json = run("resubmit", str(csv), "--name", "../../etc/passwd", "--json", cwd=tmp_path)
    assert json.loads(as_json.out)["error"]["code"] == "bad-blob-name"


def test_resubmit_json_and_a_second_upload(app_env, settings, storage, tmp_path: Path, csv: Path) -> None:
    first = run("resubmit", str(csv), "--json", "--name", "2026/11/plan.csv", cwd=tmp_path)
    assert first.code == 0, first.err
    assert json.loads(first.out) | {"file": ""} == {"status": "uploaded", "file": "", "bytes": csv.stat().st_size,
                                                     "container": settings.input_container, "name": "2026/11/plan.csv"}

    again = run("--json", "resubmit", str(csv), "--name", "2026/11/plan.csv", cwd=tmp_path)
    assert again.code == 4 and json.loads(again.out)["error"]["code"] == "already-waiting"
    assert "already in the input container" in again.error_line()


def test_status_escapes_a_hostile_source_name(app_env, settings, storage: BlobServiceClient, tmp_path: Path) -> None:
    receipt = {"source": HOSTILE, "status": "imported", "counts": {"created": 1}, "finished_at": "2026-12-01T10:00:00Z",
               "folder": "x/1"}
    storage.get_blob_client(settings.archive_container, "x/1/receipt.json").upload_blob(json.dumps(receipt))

    code, shown = run_in_terminal("status", cwd=tmp_path)

    assert code == 0, shown
    assert "\x1b]0;" not in shown and "\x07" not in shown
    assert SHOWN in shown and not any(line.startswith("Imported: forged") for line in shown.splitlines())


def test_usage_errors_are_json_under_json(tmp_path: Path) -> None:
    env = clean_env()

    missing = run("validate", str(tmp_path / "nowhere.csv"), "--json", env=env, cwd=tmp_path)
    assert missing.code == 2 and json.loads(missing.out)["error"]["code"] == "usage"
    assert "does not exist" in missing.error_line()
    bad = run("--json", "status", "--limit", "many", env=env, cwd=tmp_path)
    assert bad.code == 2 and json.loads(bad.out)["error"]["exit_code"] == 2
    unknown = run("frobnicate", env=env, cwd=tmp_path)
    assert unknown.code == 2 and "No such command" in unknown.error_line()


# --- validate: scriptable and bounded -----------------------------------------------------------------
def test_validate_exit_codes_and_structured_problems(app_env, sandbox: Sandbox, tmp_path: Path, csv: Path) -> None:
    result = run("validate", str(csv), "--json", cwd=tmp_path)

    assert result.code == 1, result.err
    report = json.loads(result.out)
    assert report["result"] == "would-reject-lines" and report["exit_code"] == 1
    assert report["summary"] | {} == {"update": 1, "create": 1, "reject": 1, "lines": 3}
    [problem] = report["problems"]
    assert problem | {"message": ""} == {
        "line": 3, "record": "Jobb", "field": "record type", "position": 0, "value": "Jobb",
        "code": "unknown-record-type", "reason": "is not a known record type (did you mean Job?)",
        "what_to_do": "start the line with Employee, Job or Operation", "message": ""}
    assert "lines" not in report and sandbox.writes() == {}

    every = json.loads(run("validate", str(csv), "--json", "--all-lines", "--limit", "2", cwd=tmp_path).out)
    assert [(line["line"], line["action"]) for line in every["lines"]] == [(1, "update"), (2, "create")]
    assert every["lines_left_off"] == 1


def test_validate_reports_an_unreachable_target_once(app_env, sandbox: Sandbox, tmp_path: Path, csv: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_MAX_ATTEMPTS", "1")
    sandbox.outage()

    result = run("validate", str(csv), cwd=tmp_path)

    assert result.code == 4
    assert "SmartTID" in result.error_line() and "timebridge doctor" in result.err
    assert result.out.count("kept failing") + result.out.count("could not be reached") <= 1
    assert "Not checked (2 lines not checked against the target)" in result.out
    assert "Line 3 (Jobb): reject" in result.out  # the file's own problems are still listed
    report = json.loads(run("validate", str(csv), "--json", cwd=tmp_path).out)
    assert report["file_problem"]["code"] == "target-unavailable" and report["file_problem"]["lines_not_checked"] == 2
    assert [problem["line"] for problem in report["problems"]] == [3]


def test_validate_reports_a_missing_secret_once(app_env, tmp_path: Path, csv: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTTID_API_KEY")

    result = run("validate", str(csv), "--json", cwd=tmp_path)

    assert result.code == 3
    assert "SMARTTID_API_KEY" in result.error_line()
    report = json.loads(result.out)
    assert report["file_problem"]["code"] == "configuration" and report["result"] == "not-checked"
    assert [problem["line"] for problem in report["problems"]] == [3]


def test_validate_reports_refused_credentials_once(app_env, sandbox: Sandbox, tmp_path: Path, csv: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTTID_API_KEY", "not-the-key")

    result = run("validate", str(csv), "--json", cwd=tmp_path)

    assert result.code == 3
    assert "SmartTID refused the login" in result.error_line() and "not-the-key" not in result.out + result.err
    report = json.loads(result.out)
    assert report["file_problem"]["code"] == "credentials-refused" and report["file_problem"]["lines_not_checked"] == 2


def test_validate_for_tic_tac_fails_at_once_when_storage_cannot_be_reached(tmp_path: Path, csv: Path) -> None:
    env = clean_env(TARGET_SYSTEM="tictac", TICTAC_API_CODE="code", IntegrationStorage=unreachable_storage())

    result = run("validate", str(csv), env=env, cwd=tmp_path)

    assert result.code == 4 and "cannot be reached (connection refused)" in result.error_line()
    assert run("validate", str(csv), "--offline", env=env, cwd=tmp_path).code == 1  # offline needs no storage


def test_validate_caps_the_report(tmp_path: Path) -> None:
    file = tmp_path / "many.csv"
    file.write_bytes(b"".join(b"Jobb;%d\r\n" % n for n in range(1, 501)))

    result = run("validate", str(file), "--offline", "--limit", "20", env=clean_env(), cwd=tmp_path)

    assert result.code == 1
    assert result.out.count("): reject") == 20 and "… 480 more rejected lines not shown" in result.out
    report = json.loads(run("validate", str(file), "--offline", "--json", env=clean_env(), cwd=tmp_path).out)
    assert len(report["problems"]) == 200 and report["problems_left_off"] == 300


# --- doctor -----------------------------------------------------------------------------------------------
def test_doctor_checks_everything_and_prints_no_secret(app_env, storage, sandbox: Sandbox, tmp_path: Path) -> None:
    result = run("doctor", "--json", cwd=tmp_path)

    assert result.code == 0, result.out + result.err
    report = json.loads(result.out)
    assert {check["name"]: check["status"] for check in report["checks"]} == {
        "Settings": "ok", "Storage": "ok", "Secrets": "ok", "Target": "ok", "Budget": "info", "Deferrals": "info"}
    for secret in (app_env["SMARTTID_API_KEY"], app_env["SMARTTID_CUSTOMER_KEY"], DEV_KEY):
        assert secret not in result.out
    assert report["settings"]["IntegrationStorage"]["value"].startswith("(set; not shown")
    text = run("doctor", cwd=tmp_path)
    assert text.code == 0 and "SmartTID login at" in text.out and "INPUT_CONTAINER = input-" in text.out


def test_doctor_names_each_problem(tmp_path: Path) -> None:
    result = run("doctor", env=clean_env(IntegrationStorage=unreachable_storage()), cwd=tmp_path)

    assert result.code == 4
    assert "Storage    PROBLEM" in result.out and "Secrets    PROBLEM" in result.out
    assert "Target     skipped" in result.out
    lines = result.err.splitlines()
    assert len(lines) == 2 and all(line.startswith("Error: ") for line in lines)


def test_doctor_for_tic_tac_says_hello_and_shows_the_budget(app_env, storage, tictac: TicTacSandbox,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_SYSTEM", "tictac")
    monkeypatch.setenv("TICTAC_BASE_URL", tictac.base_url)
    monkeypatch.setenv("TICTAC_API_CODE", tictac.api_code)
    monkeypatch.setenv("XREF_TABLE", "xref" + app_env["INPUT_CONTAINER"][-8:])
    monkeypatch.setenv("BUDGET_TABLE", "budget" + app_env["INPUT_CONTAINER"][-8:])
    first = run("doctor", cwd=tmp_path)  # the tables are infra/'s (timebridge init, locally): never made at run time
    assert first.code == 3 and "table xref" in first.out and "timebridge init" in first.out, first.out + first.err
    assert run("init", cwd=tmp_path).code == 0

    result = run("doctor", cwd=tmp_path)

    assert result.code == 0, result.out + result.err
    assert "Tic-Tac /v1/hello at" in result.out and "calls left in the rolling 24 hours" in result.out
    assert tictac.api_code not in result.out
    assert sum(n for call, n in tictac.calls().items() if call.endswith("/v1/hello")) == 1  # the first never asked


def test_doctor_probe_says_which_tic_tac_guesses_hold(app_env, storage, tictac: TicTacSandbox, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"TARGET_SYSTEM": "tictac", "TICTAC_BASE_URL": tictac.base_url,
                        "TICTAC_API_CODE": tictac.api_code}.items():
        monkeypatch.setenv(name, value)

    def verdicts() -> dict[str, str]:
        result = run("doctor", "--probe", "--json", cwd=tmp_path)
        assert result.code == 0, result.out + result.err
        return {finding["topic"]: finding["verdict"] for finding in json.loads(result.out)["probe"]}

    found = verdicts()
    assert found["list shape (GET /v1/projects)"] == found["projectNumber on projects"] == "holds"
    assert found["activities in GET /v1/projects"] == found["booleans (isActive of users)"] == "holds"
    assert found["activity types"] == "holds" and found["paging and caps"] == "cannot tell"
    tictac.switch(project_number="absent", project_activities="none", booleans="strings", projects_json="wrapped")
    found = verdicts()
    assert found["projectNumber on projects"] == found["activities in GET /v1/projects"] == "differs"
    assert found["list shape (GET /v1/projects)"] == found["booleans (isActive of users)"] == "holds"
    reads = {call: n for call, n in tictac.calls().items() if call.endswith(("/v1/users", "/v1/projects"))}
    assert sorted(reads.values()) == [2, 2] and not tictac.writes()  # two reads per probe, nothing written


def test_match_reports_readiness_and_exits_1_when_not_ready(app_env, storage, sandbox: Sandbox, tmp_path: Path,
                                                           csv: Path) -> None:
    result = run("match", str(csv), "--json", cwd=tmp_path)
    assert result.code == 1, result.err  # line 3 is a problem: not ready
    report = json.loads(result.out)
    employees = report["kinds"][0]
    assert employees["matched"] == {"by employee code": 1} and employees["would_create"][0]["line"] == 2
    assert report["ready"] is False and sandbox.writes() == {}

    good = tmp_path / "good.csv"
    good.write_bytes(b"Employee;1001;Jens Hansen\r\n")
    ready = run("match", str(good), cwd=tmp_path)
    assert ready.code == 0, ready.err
    assert "Ready: every line matches or is meant to be new." in ready.out
