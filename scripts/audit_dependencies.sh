#!/usr/bin/env bash
# Dependency audit: pip-audit checks every package requirements-dev.txt (and so requirements.txt)
# resolves to against a vulnerability database, and fails on any known vulnerability or on any
# package it could not check (--strict).
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
    exit 0
  fi
  echo "audit: cannot run - $reason." >&2
  exit 3
fi

if ! "$AUDIT_VENV/bin/pip-audit" --version 2>/dev/null | grep -q " $PIP_AUDIT_VERSION\$"; then
  echo "audit: installing pip-audit==$PIP_AUDIT_VERSION into $AUDIT_VENV"
  python3 -m venv "$AUDIT_VENV"
  "$AUDIT_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "pip-audit==$PIP_AUDIT_VERSION"
fi
echo "audit: pip-audit $PIP_AUDIT_VERSION (PyPI vulnerability data) over requirements-dev.txt"
exec "$AUDIT_VENV/bin/pip-audit" --strict --progress-spinner off --vulnerability-service pypi \
  --requirement requirements-dev.txt
