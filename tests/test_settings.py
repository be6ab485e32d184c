"""Settings: validation with readable messages, and the docs listing every setting the code reads."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.platform.config import FUNCTION_TIMEOUT_SECONDS, Settings, load_settings
from shared.targets.registry import all_setting_names, check_target, target_settings
from shared.targets.smarttid.settings import SmartTidSettings
from shared.targets.tictac.settings import TicTacSettings

ROOT = Path(__file__).resolve().parent.parent
AZURE_ONLY = {"IntegrationStorage__blobServiceUri", "IntegrationStorage__tableServiceUri"}


def test_defaults_are_the_documented_container_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INPUT_CONTAINER", "OUTPUT_CONTAINER", "ERROR_CONTAINER", "ARCHIVE_CONTAINER"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().containers == ("input", "output", "error", "archive", "validate", "export-state")


@pytest.mark.parametrize("name", ["in", "Input", "input_files", "-input", "a" * 64])
def test_invalid_container_name_is_a_readable_configuration_error(monkeypatch, name: str) -> None:
    monkeypatch.setenv("INPUT_CONTAINER", name)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "INPUT_CONTAINER" in message and "3-63 lowercase letters" in message and "Azure portal" in message


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "docs" / "administrator.md").read_text()
    missing = [name for name in all_setting_names() if f"`{name}`" not in readme]
    assert missing == []


def test_local_settings_example_lists_every_local_setting_and_both_secrets() -> None:
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert all_setting_names() - AZURE_ONLY <= set(values)
    assert {"SMARTTID_API_KEY", "SMARTTID_CUSTOMER_KEY"} <= set(values)


# ---- settings that would open a hole are refused, with a message that says what to set ----------


def refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        check_target(load_settings())  # TimeBridge's settings, then the target's own
    return str(caught.value)


OTHER_CONTAINERS = sorted(
    str(field.alias) for name, field in Settings.model_fields.items() if name.endswith("_container") and name != "input_container"
)


def test_the_other_containers_are_the_ones_the_app_writes_to() -> None:
    assert {"OUTPUT_CONTAINER", "ERROR_CONTAINER", "ARCHIVE_CONTAINER"} <= set(OTHER_CONTAINERS)


@pytest.mark.parametrize("other", OTHER_CONTAINERS)
def test_input_container_shared_with_another_container_is_refused(monkeypatch, other: str) -> None:
    message = refusal(monkeypatch, INPUT_CONTAINER="shared", **{other: "shared"})
    assert f"INPUT_CONTAINER is 'shared', the same container as {other}" in message
    assert "imported again" in message  # why it is unsafe
    assert "default 'input'" in message  # what to set instead
    assert "Azure portal" in message


@pytest.mark.parametrize(
    "url",
    ["http://smartapi.smarttid.dk", "http://10.0.0.5:8080/api", "ftp://smartapi.smarttid.dk", "smartapi.smarttid.dk", "https://"],
)
def test_target_base_url_must_be_https(monkeypatch, url: str) -> None:
    message = refusal(monkeypatch, SMARTTID_BASE_URL=url)
    assert f"SMARTTID_BASE_URL is '{url}'" in message
    assert "https://smartapi.smarttid.dk" in message
    if url.startswith("http://"):
        assert "unencrypted" in message and "API" in message


def test_credentials_in_a_refused_url_are_not_repeated(monkeypatch) -> None:
    message = refusal(monkeypatch, SMARTTID_BASE_URL="http://admin:s3cret-Pa55@smartapi.example.dk/")
    assert "s3cret-Pa55" not in message and "admin" not in message
    assert "http://***@smartapi.example.dk/" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8791", "http://localhost:8791/", "http://[::1]:8791", "https://smartapi.smarttid.dk"])
def test_https_or_http_to_this_machine_is_accepted(monkeypatch, url: str) -> None:
    monkeypatch.setenv("SMARTTID_BASE_URL", url)
    assert SmartTidSettings().base_url == url


@pytest.mark.parametrize(
    ("schedule", "hint"),
    [
        ("*/15 * * * *", "put the seconds first"),
        ("00:15:00", "TimeSpan"),
        ("0 */15 * * * * 2026", "six fields"),
        ("0 61 * * * *", "out of range"),
        ("0 0 25 * * *", "out of range"),
        ("every 15 minutes", "six fields"),
        ("", "six fields"),
    ],
)
def test_export_schedule_must_be_ncrontab(monkeypatch, schedule: str, hint: str) -> None:
    message = refusal(monkeypatch, EXPORT_SCHEDULE=schedule)
    assert f"EXPORT_SCHEDULE is '{schedule}'" in message and hint in message
    assert "'0 */15 * * * *'" in message


@pytest.mark.parametrize("schedule", ["0 */15 * * * *", "0 0 6 * * Mon-Fri", "30 5 0-23/2 1,15 * *", "0 0 0 * Jan-Mar Sun"])
def test_valid_ncrontab_schedules_are_accepted(monkeypatch, schedule: str) -> None:
    monkeypatch.setenv("EXPORT_SCHEDULE", schedule)
    assert load_settings().export_schedule == schedule


def test_hidden_characters_in_a_refused_value_are_shown_escaped(monkeypatch) -> None:
    message = refusal(monkeypatch, INPUT_CONTAINER="in\x1b[2Jput\u202e")
    assert "in\\x1b[2Jput\\u202e" in message
    assert "\x1b" not in message and "\u202e" not in message


def test_cpr_number_is_withheld_unless_opted_in(monkeypatch) -> None:
    monkeypatch.delenv("SEND_CPR_NUMBER", raising=False)
    assert load_settings().send_cpr_number is False
    monkeypatch.setenv("SEND_CPR_NUMBER", "true")
    assert load_settings().send_cpr_number is True


# ---- start-up: refused loudly, without hiding the functions ------------------------------------

STARTUP = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
import function_app
functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
print(sorted(functions))
try:
    functions["export_ledger"].get_user_function()(timer=None)
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def start_app(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STARTUP], cwd=ROOT, env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"INPUT_CONTAINER": "output"}, "INPUT_CONTAINER is 'output', the same container as OUTPUT_CONTAINER"),
        ({"SMARTTID_BASE_URL": "http://smartapi.smarttid.dk"}, "SMARTTID_BASE_URL is 'http://smartapi.smarttid.dk'"),
        ({"EXPORT_SCHEDULE": "*/5 * * * *"}, "EXPORT_SCHEDULE is '*/5 * * * *'"),
    ],
)
def test_unsafe_setting_is_refused_at_start_up_without_hiding_the_functions(env: dict[str, str], named: str) -> None:
    result = start_app(env)
    assert result.returncode == 0, result.stderr  # importing function_app never raises
    first, second = result.stdout.splitlines()[:2]
    assert first == "['export_ledger', 'import_file', 'resume_deferred', 'validate_file']"  # every function still listed in the portal
    # One clear ERROR at start-up ...
    refusals = [line for line in result.stderr.splitlines() if line.startswith("ERROR shared.platform.config")]
    assert len(refusals) == 1 and "refuses to run" in refusals[0] and named in refusals[0]
    # ... and every invocation fails at once with the same message.
    assert second.startswith("ConfigurationError ") and named in second


def test_valid_settings_start_without_a_refusal() -> None:
    result = start_app({})
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr
    assert result.stdout.splitlines()[0] == "['export_ledger', 'import_file', 'resume_deferred', 'validate_file']"


@pytest.mark.parametrize("other", ["OUTPUT_CONTAINER", "ERROR_CONTAINER", "ARCHIVE_CONTAINER"])
def test_validate_container_shared_with_another_container_is_refused(other: str, monkeypatch) -> None:
    # Files in the drop zone are removed once checked: sharing it would delete TimeBridge's own files.
    monkeypatch.setenv("VALIDATE_CONTAINER", "shared-one")
    monkeypatch.setenv(other, "shared-one")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert f"VALIDATE_CONTAINER is 'shared-one', the same container as {other}" in str(caught.value)


# ---- stricter refusals: containers, caps, the vault address, schedules ---------------------------

CONTAINER_SETTINGS = ["INPUT_CONTAINER", "OUTPUT_CONTAINER", "ERROR_CONTAINER", "ARCHIVE_CONTAINER",
                      "VALIDATE_CONTAINER", "EXPORT_STATE_CONTAINER"]


@pytest.mark.parametrize("pair", list(itertools.combinations(CONTAINER_SETTINGS, 2)))
def test_all_six_containers_must_be_pairwise_distinct(monkeypatch, pair: tuple[str, str]) -> None:
    message = refusal(monkeypatch, **dict.fromkeys(pair, "same-one"))
    assert "'same-one'" in message and all(name in message for name in pair)


@pytest.mark.parametrize("other", ["OUTPUT_CONTAINER", "ERROR_CONTAINER", "EXPORT_STATE_CONTAINER"])
def test_the_archive_is_shared_with_no_other_container(monkeypatch, other: str) -> None:
    message = refusal(monkeypatch, ARCHIVE_CONTAINER="shared-one", **{other: "shared-one"})
    assert "are both 'shared-one'" in message and "ARCHIVE_CONTAINER" in message and other in message
    assert "CPR numbers" in message and "a container of its own" in message


def test_file_size_and_time_limit_are_capped_by_the_instance_and_the_function_timeout(monkeypatch) -> None:
    message = refusal(monkeypatch, MAX_FILE_BYTES=str(140 * 1024 * 1024 + 1))
    assert "MAX_FILE_BYTES is 146,800,641 bytes; at most 146,800,640" in message and "4,096 MB" in message
    message = refusal(monkeypatch, IMPORT_TIME_LIMIT_SECONDS="1501")
    assert "IMPORT_TIME_LIMIT_SECONDS is 1,501; at most 1,500" in message and "functionTimeout" in message
    monkeypatch.setenv("MAX_FILE_BYTES", str(140 * 1024 * 1024))
    monkeypatch.setenv("IMPORT_TIME_LIMIT_SECONDS", "1500")
    assert load_settings().max_file_bytes == 140 * 1024 * 1024


def test_the_time_limit_cap_follows_host_json() -> None:
    timeout = json.loads((ROOT / "host.json").read_text())["functionTimeout"]
    hours, minutes, seconds = (int(part) for part in timeout.split(":"))
    assert hours * 3600 + minutes * 60 + seconds == FUNCTION_TIMEOUT_SECONDS
    assert Settings.model_fields["import_time_limit_seconds"].default == FUNCTION_TIMEOUT_SECONDS - 300


@pytest.mark.parametrize("url", ["http://kv-timebridge.vault.azure.net/", "kv-timebridge", "https://example.com/",
                                 "https://kv-timebridge.vault.azure.net/secrets/x", "https://kv.vault.azure.net.evil.dk/"])
def test_key_vault_url_is_checked_at_start_up(monkeypatch, url: str) -> None:
    message = refusal(monkeypatch, KEY_VAULT_URL=url)
    assert f"KEY_VAULT_URL is '{url}'" in message and "Vault URI" in message


@pytest.mark.parametrize("url", ["https://kv-timebridge.vault.azure.net/", "https://kv-timebridge.vault.azure.net",
                                 "https://kv-x.vault.azure.cn/", "https://127.0.0.1:8443/"])
def test_a_key_vault_uri_is_accepted(monkeypatch, url: str) -> None:
    monkeypatch.setenv("KEY_VAULT_URL", url)
    assert load_settings().key_vault_url == url


def test_a_plain_http_tictac_address_is_refused_with_tictacs_default(monkeypatch) -> None:
    message = refusal(monkeypatch, TARGET_SYSTEM="tictac", TICTAC_BASE_URL="http://www.tictacmobile.com/api/rest")
    assert "default 'https://www.tictacmobile.com/api/rest'" in message and "smarttid" not in message.lower()


@pytest.mark.parametrize("setting", ["EXPORT_SCHEDULE", "RESUME_SCHEDULE"])
@pytest.mark.parametrize(("schedule", "gap"), [("* * * * * *", "1 second(s)"), ("0 * * * * *", "60 second(s)"),
                                               ("0 0,4 * * * *", "240 second(s)"),
                                               ("0 1,58 0,23 1,31 * *", "180 second(s)")])
def test_schedules_closer_than_five_minutes_are_refused(monkeypatch, setting: str, schedule: str, gap: str) -> None:
    message = refusal(monkeypatch, **{setting: schedule})
    assert f"{setting} is '{schedule}', which fires {gap} apart" in message
    assert "at least 5 minutes" in message and f"Set {setting} to" in message


@pytest.mark.parametrize("schedule", ["0 */5 * * * *", "0 0,5 * * * *", "0 0 23 31 * *"])
def test_schedules_five_minutes_apart_or_more_are_accepted(monkeypatch, schedule: str) -> None:
    monkeypatch.setenv("RESUME_SCHEDULE", schedule)
    assert load_settings().resume_schedule == schedule


def test_the_username_template_is_checked_by_the_same_rule_the_tictac_mapping_uses(monkeypatch) -> None:
    # Tic-Tac's settings check the template with the rule its mapping uses.
    from shared.targets.tictac.mapping import UserNameRule

    monkeypatch.setenv("TARGET_SYSTEM", "tictac")
    default = TicTacSettings.model_fields["username_template"].default
    UserNameRule(default)  # raises ValueError for an invalid template
    assert target_settings(load_settings()).username_template == default  # type: ignore[attr-defined]
    for bad in ("{name}", "plain", "{email"):
        with pytest.raises(ValueError, match="userName template"):
            UserNameRule(bad)
        monkeypatch.setenv("TICTAC_USERNAME_TEMPLATE", bad)
        with pytest.raises(ConfigurationError, match="TICTAC_USERNAME_TEMPLATE"):
            check_target(load_settings())


def test_a_targets_own_settings_are_read_only_when_it_is_the_target(monkeypatch) -> None:
    monkeypatch.setenv("TICTAC_WORKTYPE_MAP", "nonsense")  # Tic-Tac's, broken: SmartTID is the target
    check_target(load_settings())
    monkeypatch.setenv("TARGET_SYSTEM", "tictac")
    with pytest.raises(ConfigurationError, match="TICTAC_WORKTYPE_MAP: 'nonsense' is not TYPE=CODE"):
        check_target(load_settings())


