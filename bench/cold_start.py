"""Cold start: ``import function_app`` against a bare app with the same bindings, in fresh processes.

    .venv/bin/python -m bench.cold_start [--repeat 7]

Each import runs in a new interpreter (this venv's Python, an empty environment as in
``tests/test_function_app.py``), the two apps alternately, ``--repeat`` times; the table shows the
median seconds of the import itself (interpreter start-up not included), the modules loaded
(``sys.modules``) and the ratio, all from the same run:

* **function_app**: this repository's ``function_app.py`` (registers the four functions and checks
  the configuration at start-up);
* **bare app**: a ``function_app.py`` written to a temporary folder that declares the same
  bindings and nothing else — the two Event Grid blob triggers binding the storage SDK's
  ``BlobClient`` (so it imports the same binding extension) and the two timers — with empty
  bodies;
* **bare, stream binding** (for reference): the same app with its blob triggers binding the
  host's ``InputStream`` instead (no binding extension).

The goal (issue 22) is a ratio of at most 1.5 against the bare app. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.5

BARE = '''
import azure.functions as func
{binding_import}

app = func.FunctionApp()


@app.function_name("import_file")
@app.blob_trigger(arg_name="client", path="%INPUT_CONTAINER%/{{name}}", connection="IntegrationStorage",
                  source=func.BlobSource.EVENT_GRID)
def import_file(client: {binding_type}) -> None:
    pass


@app.function_name("validate_file")
@app.blob_trigger(arg_name="client", path="%VALIDATE_CONTAINER%/{{name}}", connection="IntegrationStorage",
                  source=func.BlobSource.EVENT_GRID)
def validate_file(client: {binding_type}) -> None:
    pass


@app.function_name("export_ledger")
@app.timer_trigger(arg_name="timer", schedule="%EXPORT_SCHEDULE%", use_monitor=True, run_on_startup=False)
def export_ledger(timer: func.TimerRequest) -> None:
    pass


@app.function_name("resume_deferred")
@app.timer_trigger(arg_name="timer", schedule="%RESUME_SCHEDULE%", use_monitor=True, run_on_startup=False)
def resume_deferred(timer: func.TimerRequest) -> None:
    pass
'''

PROBE = (
    "import json, sys, threading, time\n"
    "started = time.perf_counter()\n"
    "import function_app\n"
    "seconds = time.perf_counter() - started\n"
    "modules = len(sys.modules)\n"
    "for thread in threading.enumerate():\n"
    "    if thread is not threading.main_thread():\n"
    "        thread.join()\n"
    "print(json.dumps({'seconds': seconds, 'checked': time.perf_counter() - started, 'modules': modules, "
    "'all_modules': len(sys.modules), 'functions': len(function_app.app.get_functions())}))\n"
)


def probe(folder: Path) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=folder, capture_output=True, text=True, timeout=120,
                            env={"PATH": os.environ.get("PATH", "")})
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        apps = {"function_app": ROOT}
        for name, binding_import, binding_type in (
            ("bare app", "import azurefunctions.extensions.bindings.blob as blob", "blob.BlobClient"),
            ("bare, stream binding", "", "func.InputStream"),
        ):
            folder = Path(temp) / name.replace(" ", "_").replace(",", "")
            folder.mkdir()
            (folder / "function_app.py").write_text(BARE.format(binding_import=binding_import,
                                                                binding_type=binding_type))
            apps[name] = folder
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
        for _ in range(args.repeat):
            for name, folder in apps.items():
                runs[name].append(probe(folder))
    medians = {name: statistics.median(run["seconds"] for run in found) for name, found in runs.items()}
    checked = {name: statistics.median(run["checked"] for run in found) for name, found in runs.items()}
    base = medians["bare app"]
    print(f"import function_app in a fresh process, empty environment; median of {args.repeat}")
    print("(+ start-up check: until the app's other threads — the configuration check — are done; modules then)")
    print(f"{'app':<22} {'import s':>8} {'modules':>7} {'functions':>9} {'ratio':>6} | "
          f"{'+ start-up check s':>18} {'modules':>7} {'ratio':>6}")
    for name, found in runs.items():
        print(f"{name:<22} {medians[name]:>8.3f} {int(found[-1]['modules']):>7} {int(found[-1]['functions']):>9} "
              f"{medians[name] / base:>6.2f} | {checked[name]:>18.3f} {int(found[-1]['all_modules']):>7} "
              f"{checked[name] / checked['bare app']:>6.2f}")
    ratio = medians["function_app"] / base
    print(f"cold-start goal: function_app <= {GOAL} x the bare app: {ratio:.2f} x "
          f"({'met' if ratio <= GOAL else 'not met'})")


if __name__ == "__main__":
    main()
