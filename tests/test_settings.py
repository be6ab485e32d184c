"""Settings: validation with readable messages, and the docs listing every setting the code reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import ConfigurationError, Settings, load_settings, setting_names

ROOT = Path(__file__).resolve().parent.parent
AZURE_ONLY = {"IntegrationStorage__blobServiceUri", "IntegrationStorage__tableServiceUri"}


def test_defaults_are_the_documented_container_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INPUT_CONTAINER", "OUTPUT_CONTAINER", "ERROR_CONTAINER", "ARCHIVE_CONTAINER"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().containers == ("input", "output", "error", "archive")


@pytest.mark.parametrize("name", ["in", "Input", "input_files", "-input", "a" * 64])
def test_invalid_container_name_is_a_readable_configuration_error(monkeypatch, name: str) -> None:
    monkeypatch.setenv("INPUT_CONTAINER", name)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "INPUT_CONTAINER" in message and "3-63 lowercase letters" in message and "Azure portal" in message


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in setting_names() if f"`{name}`" not in readme]
    assert missing == []


def test_local_settings_example_lists_every_local_setting_and_both_secrets() -> None:
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert setting_names() - AZURE_ONLY <= set(values)
    assert {"SMARTTID_API_KEY", "SMARTTID_CUSTOMER_KEY"} <= set(values)
