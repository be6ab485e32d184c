"""The matching readiness report against SmartTID (the SmartAPI sandbox): codes are SmartTID's own
fields, so every match is by code; reads only."""

from __future__ import annotations

from shared.importing.parsing import parse_file
from shared.importing.passes import in_memory
from shared.importing.readiness import readiness
from shared.platform.config import Settings
from shared.targets.factory import connector_factory
from tests.conftest import Sandbox


def test_smarttid_matches_by_code_and_lists_new_and_unlisted_records(settings: Settings, sandbox: Sandbox) -> None:
    text = "Employee;1001;Jens Hansen\nEmployee;a0042;Ny\nJob;1000;Målerstation Ærø\nOperation;1000;10;PAINT;Maling"
    parsed = parse_file(lambda: [text.encode()], fold_codes=True)
    connector = connector_factory(settings)()
    try:
        report = readiness(connector, parsed, in_memory(parsed), source="f.csv", target="SmartTID")
    finally:
        connector.close()
    assert sandbox.writes() == {}
    employees, jobs, operations = report.kinds
    assert employees.matched == {"by employee code": 1}
    assert [item.line for item in employees.would_create] == [2]
    assert "no employee in SmartTID has employee code a0042" in employees.would_create[0].what
    assert employees.counts["not_in_file"] == 3  # 1002, 0042 and 1099: in SmartTID, not in this file
    assert any("(employee code 1002) is not in this file" in item.what for item in employees.not_in_file)
    assert jobs.matched == {"by job code": 1} and operations.matched == {"by job code and line number": 1}
    assert report.ready and "Ready: every line matches or is meant to be new." in report.to_text()
