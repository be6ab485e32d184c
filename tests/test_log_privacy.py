"""No personal data in the logs: the HTTP libraries' request lines are turned down at start-up,
a new Tic-Tac user is logged by employee code, and text from a target is escaped in log lines
(against the real sandboxes)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.export import run_export
from shared.platform.log_levels import QUIET_LOGGERS
from tests.conftest import Sandbox, TicTacSandbox
from tests.test_tictac_import import drop, tictac_env, tt_settings, tt_storage  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent


def test_the_app_turns_the_http_libraries_down_at_start_up() -> None:
    probe = ("import logging, function_app; from shared.platform.log_levels import QUIET_LOGGERS; "
             "print([logging.getLogger(name).level for name in QUIET_LOGGERS])")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": os.environ.get("PATH", "")})
    assert result.stdout.strip() == str([logging.WARNING] * len(QUIET_LOGGERS)), result.stderr
    assert {"httpx", "httpcore", "azure.core.pipeline.policies.http_logging_policy"} <= set(QUIET_LOGGERS)
    levels = json.loads((ROOT / "host.json").read_text())["logging"]["logLevel"]
    assert levels["default"] == "Warning" and levels["Function"] == "Information"
    assert levels["Host.Results"] == "Information"  # invocations stay visible in the portal


def test_no_user_name_or_e_mail_reaches_the_logs(tt_storage, tt_settings, tictac: TicTacSandbox,  # noqa: F811
                                                 caplog: pytest.LogCaptureFixture) -> None:
    import function_app  # noqa: F401 - the start-up sets the library levels

    caplog.set_level(logging.DEBUG)  # everything TimeBridge itself logs
    receipt = drop(tt_storage, tt_settings, "mail.csv", "Employee;E-91;Mail Person;;;;;mail.person@example.dk")

    assert receipt["counts"]["created"] == 1, receipt
    logged = "\n".join(f"{record.name}: {record.getMessage()}" for record in caplog.records)
    assert "mail.person@example.dk" not in logged and "mailpersonexampledk" not in logged, logged
    assert "Tic-Tac user created for employee E-91" in logged
    assert not [record for record in caplog.records if record.name in QUIET_LOGGERS and record.levelno < logging.WARNING]


def test_a_targets_answer_is_escaped_in_log_lines(storage, settings, sandbox: Sandbox,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sandbox.fault("GET", "/employeetimeledgerentries", status=400, message="refused\x1b[2J\u202e\u2028forged line",
                  times=1)

    assert run_export(settings) is not None
    [warning] = [record.getMessage() for record in caplog.records if "SmartTID refused" in record.getMessage()]
    assert "refused\\x1b[2J\\u202e\\u2028forged line" in warning
    assert not any(char in caplog.text for char in ("\x1b", "\u202e", "\u2028"))
