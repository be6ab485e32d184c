"""The function app as the Functions host sees it: import safety and trigger bindings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.functions_host import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent


def test_function_app_imports_with_an_empty_environment() -> None:
    # Any exception at import time hides every function in Azure.
    result = subprocess.run(
        [sys.executable, "-c", "import function_app; print(len(function_app.app.get_functions()))"],
        cwd=ROOT, env={"PATH": os.environ.get("PATH", "")}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) == len(FUNCTIONS) >= 1


def test_import_function_is_an_event_grid_blob_trigger_on_the_input_container() -> None:
    binding = json.loads(FUNCTIONS["import_file"].get_function_json())["bindings"]
    assert binding == [
        {
            "direction": "IN",
            "type": "blobTrigger",
            "name": "client",
            "path": "%INPUT_CONTAINER%/{name}",
            "connection": "IntegrationStorage",
            "source": "EventGrid",
        }
    ]


def test_import_function_binds_the_sdk_blob_client_so_the_host_does_not_load_the_file() -> None:
    import azurefunctions.extensions.bindings.blob as blob

    function = FUNCTIONS["import_file"].get_user_function()
    assert function.__annotations__["client"] in (blob.BlobClient, "blob.BlobClient")


def test_host_json_uses_the_v4_extension_bundle() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}


def test_validate_function_is_an_event_grid_blob_trigger_on_the_validate_container() -> None:
    [binding] = json.loads(FUNCTIONS["validate_file"].get_function_json())["bindings"]
    assert (binding["type"], binding["path"], binding["source"]) == (
        "blobTrigger", "%VALIDATE_CONTAINER%/{name}", "EventGrid")


def test_resume_function_is_a_timer_on_the_resume_schedule() -> None:
    [binding] = json.loads(FUNCTIONS["resume_deferred"].get_function_json())["bindings"]
    assert (binding["type"], binding["schedule"], binding["useMonitor"]) == ("timerTrigger", "%RESUME_SCHEDULE%", True)


def test_importing_the_app_declares_the_bindings_and_leaves_the_rest_to_first_use() -> None:
    # Cold start (bench/cold_start.py): no pipeline, no target and no CLI at import; the start-up
    # check (its own thread) reads the settings without loading the Tic-Tac target for SmartTID.
    probe = ("import sys, function_app\n"
             "function_app.startup_check.join()\n"
             "print(sorted(m for m in ('shared.importing.intake', 'shared.targets.smarttid.connector', 'shared.targets.tictac.client',"
             " 'shared.targets.tictac.mapping', 'shared.export', 'tools.timebridge', 'defusedxml') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={"PATH": os.environ.get("PATH", "")},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert "ERROR" not in result.stderr  # the default settings pass the start-up check
