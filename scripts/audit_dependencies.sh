#!/usr/bin/env bash
# Dependency audit: pip-audit checks every package requirements-dev.txt (and so requirements.txt)
# resolves to, and the hashed lock of the deployed set (requirements.lock), against a vulnerability
# database, and fails on any known vulnerability or on any package it could not check (--strict).
# Then npm audit checks the npm packages (Azurite, a local development service, package-lock.json)
# against the npm registry's advisories, where that endpoint is reachable.
#
#   bash scripts/audit_dependencies.sh                  # audit; fails if the database is unreachable
#   bash scripts/audit_dependencies.sh --if-reachable   # scripts/test: says so and passes instead
#
# The database is PyPI's JSON API (https://pypi.org/pypi/<name>/<version>/json, field
# "vulnerabilities", fed from the PyPA advisory database; pip-audit's default service). The
# project's build machines reach only the package index (pip install works), not that JSON API and
# not OSV, so there the audit cannot run and scripts/test prints "NOT RUN" with the reason; run
# this script on a workstation or a CI runner with ordinary internet access (docs/deploying.md,
# "Keeping dependencies current"). pip-audit lives in its own venv, .venv-audit (gitignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PIP_AUDIT_VERSION="2.10.1"
AUDIT_VENV="${AUDIT_VENV:-$ROOT/.venv-audit}"
IF_REACHABLE=0
[[ "${1:-}" == "--if-reachable" ]] && IF_REACHABLE=1

probe_url="https://pypi.org/pypi/pip-audit/$PIP_AUDIT_VERSION/json"
probe_key="vulnerabilities"

# Is the vulnerability database reachable from here? (A 404 from a proxy counts as unreachable.)
# ---- npm: the registry's bulk advisory endpoint (where reachable) -----------------------------------
npm_audit() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm audit: NOT RUN - npm is not installed"
    return 0
  fi
  local report verdict
  report="$(npm audit --json --audit-level=low 2>/dev/null || true)"
  verdict="$(python3 - "$report" <<'PY'
import json, sys
try:
    document = json.loads(sys.argv[1] or "{}")
except ValueError:
    print("unreachable: npm audit gave no report")
    sys.exit(0)
error = document.get("error") or ("message" in document and document)
if error:
    print(f"unreachable: {(error.get('summary') or document.get('message') or 'the advisory endpoint answered an error')}")
    sys.exit(0)
counts = document.get("metadata", {}).get("vulnerabilities", {})
found = {level: n for level, n in counts.items() if level != "total" and n}
print("vulnerable: " + ", ".join(f"{n} {level}" for level, n in found.items()) if found else "clean")
PY
)"
  case "$verdict" in
    clean) echo "npm audit: no known vulnerabilities (package-lock.json)";;
    unreachable:*)
      if [[ "$IF_REACHABLE" == "1" ]]; then
        echo "npm audit: NOT RUN - ${verdict#unreachable: } (the registry's advisory endpoint is not reachable from here)"
      else
        echo "npm audit: cannot run - ${verdict#unreachable: }" >&2
        return 3
      fi;;
    *) echo "npm audit: ${verdict} - run 'npm audit' for details" >&2; return 1;;
  esac
}

npm_rc=0
npm_audit || npm_rc=$?

if ! reason="$(python3 - "$probe_url" "$probe_key" <<'PY'
import json, sys, urllib.request
url, key = sys.argv[1:]
try:
    with urllib.request.urlopen(url, timeout=15) as response:
        document = json.load(response)
except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
    print(f"{url} is not reachable from this machine ({exc})")
    sys.exit(1)
if key not in document:
    print(f"{url} answered without the '{key}' field")
    sys.exit(1)
PY
)"; then
  if [[ "$IF_REACHABLE" == "1" ]]; then
    echo "audit: NOT RUN - $reason. Run 'bash scripts/audit_dependencies.sh' where it is reachable."
    exit "$npm_rc"
  fi
  echo "audit: cannot run - $reason." >&2
  exit 3
fi

if ! "$AUDIT_VENV/bin/pip-audit" --version 2>/dev/null | grep -q " $PIP_AUDIT_VERSION\$"; then
  echo "audit: installing pip-audit==$PIP_AUDIT_VERSION into $AUDIT_VENV"
  python3 -m venv "$AUDIT_VENV"
  "$AUDIT_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "pip-audit==$PIP_AUDIT_VERSION"
fi
echo "audit: pip-audit $PIP_AUDIT_VERSION (PyPI vulnerability data) over requirements-dev.txt and requirements.lock"
pip_rc=0
"$AUDIT_VENV/bin/pip-audit" --strict --progress-spinner off --vulnerability-service pypi \
  --requirement requirements-dev.txt || pip_rc=$?
"$AUDIT_VENV/bin/pip-audit" --strict --progress-spinner off --vulnerability-service pypi --require-hashes \
  --requirement requirements.lock || pip_rc=$?
exit $(( pip_rc != 0 ? pip_rc : npm_rc ))
