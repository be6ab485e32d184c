"""``timebridge doctor --probe``: the guesses about Tic-Tac's API (docs/targets.md: Every guess about the
Tic-Tac API) that a live target can answer with reads, checked against it: holds / differs /
cannot tell. Two calls (``GET /v1/users``, ``GET /v1/projects``), taken from the shared call budget;
nothing is written. A guess only a write could test is listed once as not probed.

The answers are classified here, never printed: no name, number or key from the target reaches the
terminal but the field names and counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

HOLDS, DIFFERS, CANNOT_TELL = "holds", "differs", "cannot tell"
#: guesses only a write (or a change over time) would show: never probed (they would change data)
NOT_PROBED = "others"
PROBE_CALLS = 2


@dataclass
class Finding:
    guess: str
    topic: str
    verdict: str
    detail: str


def _rows(response: Any) -> tuple[list[Any] | None, str]:
    """The rows of a list answer and how they came (a bare array, a wrapper, 204), or None and why not."""
    if response.status_code == 204:
        return [], "204 No Content (no rows)"
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}"
    try:
        document = json.loads(response.content)
    except ValueError:
        return None, "an answer that is not JSON"
    if isinstance(document, list):
        return document, "a bare JSON array"
    if isinstance(document, dict):
        lists = [(key, value) for key, value in document.items() if isinstance(value, list)]
        if len(lists) == 1:
            return lists[0][1], f'a JSON object wrapping the list under "{lists[0][0]}"'
    return None, "JSON that is neither an array nor an object wrapping one"


def _booleans(rows: list[Any], name: str, of: str) -> Finding:
    from shared.targets.tictac.client import boolean

    topic = f"booleans ({name} of {of})"
    values = [row.get(name) for row in rows if isinstance(row, dict) and name in row]
    if not values:
        return Finding("9", topic, CANNOT_TELL, f"no row carries {name}")
    unreadable = [value for value in values if boolean(value) is None]
    if unreadable:
        return Finding("9", topic, DIFFERS,
                       f"{len(unreadable)} of {len(values)} values of {name} are neither true/false nor 1/0 (as "
                       "number or text): those answers cannot be read")
    forms = sorted({type(value).__name__ for value in values})
    return Finding("9", topic, HOLDS, f"written as {' and '.join(forms)}, which TimeBridge reads")


def classify_users(response: Any) -> list[Finding]:
    rows, shape = _rows(response)
    if rows is None:
        return [Finding("7", "list shape (GET /v1/users)", DIFFERS, f"answered {shape}")]
    findings = [Finding("7", "list shape (GET /v1/users)", HOLDS, f"{shape}; {len(rows)} users")]
    if not rows:
        return [*findings, Finding("3", "employeeNumber on users", CANNOT_TELL, "no users yet")]
    numbered = sum(1 for row in rows if isinstance(row, dict) and str(row.get("employeeNumber") or "").strip())
    has_field = any(isinstance(row, dict) and "employeeNumber" in row for row in rows)
    if not has_field:
        findings.append(Finding("3", "employeeNumber on users", DIFFERS,
                                "no user carries the field employeeNumber: users cannot be matched by the ERP's "
                                "employee code, and their hours cannot be exported"))
    else:
        findings.append(Finding("3", "employeeNumber on users", HOLDS,
                                f"the field is there; {numbered} of {len(rows)} users have one (the others cannot "
                                "be matched by number, nor their hours exported)" if numbered < len(rows) else
                                f"the field is there; all {len(rows)} users have one"))
    findings.append(_booleans(rows, "isActive", "users"))
    findings.append(Finding("18", "paging and caps", CANNOT_TELL,
                            f"no paging is documented; {len(rows)} rows came in one answer (a silent cap would "
                            "show as a round number such as 100, 500 or 1000)"))
    return findings


def classify_projects(response: Any, worktypes: dict[str, str]) -> list[Finding]:
    rows, shape = _rows(response)
    if rows is None:
        return [Finding("7", "list shape (GET /v1/projects)", DIFFERS, f"answered {shape}")]
    findings = [Finding("7", "list shape (GET /v1/projects)", HOLDS, f"{shape}; {len(rows)} projects")]
    projects = [row for row in rows if isinstance(row, dict)]
    if not projects:
        return [*findings, Finding("4", "projectNumber on projects", CANNOT_TELL, "no projects yet"),
                Finding("6", "activities in GET /v1/projects", CANNOT_TELL, "no projects yet")]
    if any("projectNumber" in row for row in projects):
        findings.append(Finding("4", "projectNumber on projects", HOLDS, "the field projectNumber is returned"))
    else:
        findings.append(Finding("4", "projectNumber on projects", DIFFERS,
                                "no project carries projectNumber: jobs are linked by the cross-references and "
                                "names only, and the export cannot name a project's job number"))
    keys = sorted({key for row in projects for key in ("activities", "Activities") if key in row})
    if keys:
        findings.append(Finding("6", "activities in GET /v1/projects", HOLDS, f"under {' and '.join(keys)}"))
    else:
        findings.append(Finding("6", "activities in GET /v1/projects", DIFFERS,
                                "no project lists its activities: each project whose operations are in a file "
                                "costs one more call (GET /v1/activities)"))
    activities = [activity for row in projects for key in keys for activity in (row.get(key) or [])
                  if isinstance(activity, dict)]
    types = {str(activity.get("type") or "").strip().upper() for activity in activities} - {""}
    if not types:
        findings.append(Finding("22", "activity types", CANNOT_TELL, "no activity carries a type"))
    else:
        unknown = sorted(types - set(worktypes))
        findings.append(Finding("22", "activity types", DIFFERS if unknown else HOLDS,
                                f"types not in TICTAC_WORKTYPE_MAP: {', '.join(unknown)}" if unknown else
                                f"every type ({', '.join(sorted(types))}) is in TICTAC_WORKTYPE_MAP"))
    findings.append(_booleans(projects, "isActive", "projects"))
    return findings


def probe_tictac(settings: Any, connector: Any, api_code: str) -> list[Finding]:
    """Read the users and the projects once, within a reservation of the shared budget."""
    import httpx

    from shared.platform.config import read_settings
    from shared.targets.http import send_limited
    from shared.targets.tictac.client import PROJECTS_PATH, TARGET_NAME, USERS_PATH
    from shared.targets.tictac.settings import TicTacSettings

    own = read_settings(TicTacSettings)

    budget = connector.budget
    reservation = budget.reserve(PROBE_CALLS) if budget is not None else None
    if budget is not None and reservation is None:
        return [Finding("-", "probe", CANNOT_TELL, f"the call budget has no room for {PROBE_CALLS} calls now")]
    findings: list[Finding] = []
    headers = {"Authorization": f"Bearer {api_code}", "Accept": "application/json", "User-Agent": "TimeBridge"}
    with httpx.Client(base_url=own.base_url.rstrip("/"), headers=headers,
                      timeout=settings.http_timeout_seconds) as client:
        def get(path: str) -> Any:
            return send_limited(client, client.build_request("GET", path), settings.max_answer_bytes, TARGET_NAME)

        if reservation is None:
            findings += classify_users(get(USERS_PATH))
            findings += classify_projects(get(PROJECTS_PATH), own.worktype_map)
        else:
            with budget.spend(reservation) as allowance:
                allowance.take("GET", USERS_PATH)
                findings += classify_users(get(USERS_PATH))
                allowance.take("GET", PROJECTS_PATH)
                findings += classify_projects(get(PROJECTS_PATH), own.worktype_map)
    findings.append(Finding(NOT_PROBED, "writes and changes over time", CANNOT_TELL,
                            "guesses 1, 2, 3 (the write), 5, 8, 10-17, 19-21 only a write, a fault or a later "
                            "read would show; never probed"))
    return findings
