"""No secret value ever reaches a log line, an exception text, a receipt or an error file."""

from __future__ import annotations

import logging

import pytest
from azure.functions.timer import TimerRequest

from tests.conftest import Sandbox, blob_names, read_blob
from tests.functions_host import registered, trigger_import


def test_secrets_appear_in_no_log_and_no_written_blob(storage, settings, sandbox: Sandbox, app_env, caplog) -> None:
    secrets = [app_env["SMARTTID_API_KEY"], app_env["SMARTTID_CUSTOMER_KEY"]]
    caplog.set_level(logging.DEBUG)
    sandbox.fault("POST", "/jobs", status=500, times=1)
    sandbox.fault("PUT", "/employees", status=400, times=1)
    data = b"Employee;1001;Jens Hansen;Hemmelig vej\nJob;S1;Secret test\nJobb;x\nOperation;NOPE;1;A;B"
    storage.get_blob_client(settings.input_container, "hygiene.csv").upload_blob(data)
    trigger_import(storage, settings.input_container, "hygiene.csv")
    registered("export_ledger").get_user_function()(TimerRequest(past_due=False))

    written = {
        f"{container}/{name}": read_blob(storage, container, name)
        for container in settings.containers
        for name in blob_names(storage, container)
    }
    assert any(name.endswith("errors.txt") for name in written)  # the failure paths did run
    assert any("receipt" in name for name in written)
    for secret in secrets:
        for name, content in written.items():
            assert secret.encode() not in content, f"secret found in {name}"
        assert secret not in caplog.text


def test_refused_credentials_name_the_secrets_but_never_show_them(storage, settings, sandbox, app_env, monkeypatch,
                                                                   caplog) -> None:
    wrong = "wrong-customer-key-do-not-print"
    monkeypatch.setenv("SMARTTID_CUSTOMER_KEY", wrong)
    caplog.set_level(logging.DEBUG)
    storage.get_blob_client(settings.input_container, "cred.csv").upload_blob(b"Employee;1;A")
    trigger_import(storage, settings.input_container, "cred.csv")

    [report_name] = [n for n in blob_names(storage, settings.error_container) if n.endswith("errors.txt")]
    report = read_blob(storage, settings.error_container, report_name).decode("utf-8-sig")
    assert "SmartTID refused the login" in report and "smarttid-customer-key" in report
    for secret in (wrong, app_env["SMARTTID_API_KEY"]):
        assert secret not in report and secret not in caplog.text


def test_connector_repr_and_errors_hide_secrets(app_env) -> None:
    from shared.errors import ApiUnavailableError
    from shared.platform.secrets import EnvironmentSecrets
    from shared.records.layouts import RecordType
    from shared.targets.http import RetryPolicy
    from shared.targets.smarttid import SMARTTID_API_KEY
    from shared.targets.smarttid.connector import SmartTidConnector

    secret = EnvironmentSecrets().get(SMARTTID_API_KEY)
    assert app_env["SMARTTID_API_KEY"] not in repr(secret)
    connector = SmartTidConnector("http://127.0.0.1:9", secret, secret, retry=RetryPolicy(attempts=1))
    with pytest.raises(ApiUnavailableError) as caught:
        connector.list_records(RecordType.EMPLOYEE)
    assert app_env["SMARTTID_API_KEY"] not in str(caught.value) + repr(caught.value)
