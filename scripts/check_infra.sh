#!/usr/bin/env bash
# Offline validation of the infrastructure-as-code (no Azure, no Bicep compiler needed):
#   1. tree-sitter-bicep syntax check of every infra/**/*.bicep   (scripts/check_bicep_syntax.py)
#   2. checkov --framework bicep over infra/: 0 failed checks and 0 parsing errors
#      (checkov itself exits 0 when it cannot parse a file, so its JSON summary is inspected, and
#      every file is parsed once more with checkov's own Bicep parser to be sure none was skipped)
#   3. pytest tests/test_infra.py (pycep assertions: settings cross-check, RBAC, filters, ...)
# checkov pins many packages, so it lives in its own venv: .venv-checkov (gitignored), created
# on first use. Idempotent; run from anywhere: bash scripts/check_infra.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CHECKOV_VERSION="3.3.30"
CHECKOV_VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
PROJECT_PY="${PROJECT_PYTHON:-$ROOT/.venv/bin/python}"
INFRA_DIR="${INFRA_DIR:-$ROOT/infra}"

if [[ ! -x "$PROJECT_PY" ]]; then
  echo "check_infra: project venv not found at $PROJECT_PY (create .venv and install the dev requirements first)" >&2
  exit 2
fi

# ---- checkov in its own venv -----------------------------------------------------------------
if ! "$CHECKOV_VENV/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  echo "check_infra: installing checkov==$CHECKOV_VERSION into $CHECKOV_VENV"
  python3 -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

mapfile -t BICEP_FILES < <(find "$INFRA_DIR" -type f -name '*.bicep' | sort)
if [[ ${#BICEP_FILES[@]} -eq 0 ]]; then
  echo "check_infra: no .bicep files under $INFRA_DIR" >&2
  exit 1
fi

# ---- 1. syntax -------------------------------------------------------------------------------
echo "== tree-sitter-bicep syntax check"
"$PROJECT_PY" scripts/check_bicep_syntax.py "${BICEP_FILES[@]}"

# ---- 2. checkov ------------------------------------------------------------------------------
echo "== checkov (bicep) over ${INFRA_DIR#"$ROOT"/}/"
REPORT="$(mktemp)"
trap 'rm -f "$REPORT"' EXIT
# Exit code is checked from the report below (checkov exits 0 on parsing errors).
"$CHECKOV_VENV/bin/checkov" -d "$INFRA_DIR" --framework bicep --skip-download --output json >"$REPORT" || true

"$CHECKOV_VENV/bin/python" - "$REPORT" "${BICEP_FILES[@]}" <<'PY'
import json
import sys
from pathlib import Path

report_path, *files = sys.argv[1:]
try:
    data = json.loads(Path(report_path).read_text())
except json.JSONDecodeError:
    print("check_infra: checkov did not produce a JSON report", file=sys.stderr)
    sys.exit(1)
reports = data if isinstance(data, list) else [data]
reports = [r for r in reports if r.get("check_type") == "bicep"]
if not reports:
    print("check_infra: checkov reported no bicep results (nothing scanned?)", file=sys.stderr)
    sys.exit(1)
report = reports[0]
summary, results = report["summary"], report["results"]

problems = []
for check in results.get("failed_checks", []):
    problems.append(f"FAILED {check['check_id']} {check['check_name']} - {check['resource']} "
                    f"({check['file_path']}:{check['file_line_range'][0]})")
for path in results.get("parsing_errors", []):
    problems.append(f"PARSING ERROR (checkov skipped the file): {path}")
if summary.get("parsing_errors"):
    problems.append(f"checkov summary counts {summary['parsing_errors']} parsing error(s)")
for check in results.get("skipped_checks", []):
    reason = (check.get("check_result") or {}).get("suppress_comment", "").strip(" :")
    if not reason or reason == "No comment provided":
        problems.append(f"SKIP WITHOUT REASON {check['check_id']} - {check['resource']} ({check['file_path']})")

# Independent proof that checkov's own Bicep parser reads every file (a file it cannot parse
# would otherwise just be missing from the results).
from checkov.bicep.parser import Parser

_, _, parse_errors = Parser().get_files_definitions([Path(f) for f in files])
for path in parse_errors:
    problems.append(f"PARSING ERROR (checkov's Bicep parser): {path}")

print(f"checkov: passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}, "
      f"parsing errors {summary['parsing_errors']}; {len(files) - len(parse_errors)}/{len(files)} files parsed")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY

# ---- 3. pycep assertions -----------------------------------------------------------------------
if [[ "${SKIP_INFRA_PYTEST:-0}" != "1" ]]; then
  echo "== pytest tests/test_infra.py"
  "$PROJECT_PY" -m pytest -q tests/test_infra.py
fi
echo "check_infra: OK"
