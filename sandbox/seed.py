"""Seed data for the SmartAPI sandbox: a few employees, jobs, operations and ledger entries."""

from __future__ import annotations

from typing import Any

EMPLOYEES: list[dict[str, Any]] = [
    {"EmployeeCode": "1001", "Name": "Jens Hansen", "DepartmentCode": "PROD", "Active": True},
    {"EmployeeCode": "1002", "Name": "Søren Ærøskøbing", "DepartmentCode": "PROD", "Active": True},
    {"EmployeeCode": "0042", "Name": "Åse Øberg", "DepartmentCode": "ADM", "Active": True},
    {"EmployeeCode": "1099", "Name": "Former Employee", "DepartmentCode": "PROD", "Active": False},
]

JOBS: list[dict[str, Any]] = [
    {"JobCode": "TEMPLATE1", "JobDescription": "Standard production template", "Status": "Template"},
    {"JobCode": "1000", "JobDescription": "Målerstation Ærø", "Status": "Started", "Reference": "PO-77"},
]

OPERATIONS: list[dict[str, Any]] = [
    {"JobCode": "1000", "LineNumber": 10, "OperationCode": "PAINT", "Description": "Maling - farve 9010"},
    {"JobCode": "1000", "LineNumber": 20, "OperationCode": "PACK", "Description": "Pakning"},
]

#: Posted job registrations. 1001 worked 9,5 h on 19-11-2026, of which 2 h were overtime: SmartTID
#: posts one row per work type (9,5 h NORMAL and 2 h OVERTIME1).
JOB_LEDGER: list[dict[str, Any]] = [
    {"EmployeeCode": "1001", "Name": "Jens Hansen", "Date": "2026-11-19T00:00:00", "JobCode": "1000",
     "JobDescription": "Målerstation Ærø", "OperationCode": "PAINT", "JobOperationLineNumber": 10,
     "OperationDescription": "Maling - farve 9010", "ActivityCode": "FAKTURERBAR",
     "ActivityDescription": "Fakturerbart", "Completed": False, "WorkTypeCode": "NORMAL",
     "StartTime": "2026-11-19T07:00:00", "EndTime": "2026-11-19T17:00:00", "TotalTime": 9.5,
     "ERPReference": "ERP-10", "DepartmentCode": "PROD", "JournalCode": "STANDARD"},
    {"EmployeeCode": "1001", "Name": "Jens Hansen", "Date": "2026-11-19T00:00:00", "JobCode": "1000",
     "JobDescription": "Målerstation Ærø", "OperationCode": "PAINT", "JobOperationLineNumber": 10,
     "OperationDescription": "Maling - farve 9010", "ActivityCode": "FAKTURERBAR",
     "ActivityDescription": "Fakturerbart", "Completed": False, "WorkTypeCode": "OVERTIME1",
     "StartTime": "2026-11-19T15:00:00", "EndTime": "2026-11-19T17:00:00", "TotalTime": 2,
     "ERPReference": "ERP-10", "DepartmentCode": "PROD", "JournalCode": "STANDARD"},
    {"EmployeeCode": "1002", "Name": "Søren Ærøskøbing", "Date": "2026-11-20T00:00:00", "JobCode": "1000",
     "JobDescription": "Målerstation Ærø", "OperationCode": "PACK", "JobOperationLineNumber": 20,
     "OperationDescription": "Pakning", "ActivityCode": "", "ActivityDescription": "",
     "Completed": True, "WorkTypeCode": "NORMAL", "StartTime": "2026-11-20T08:00:00",
     "EndTime": "2026-11-20T12:30:00", "TotalTime": 4.5, "ERPReference": "=HYPERLINK(\"x\")",
     "DepartmentCode": "PROD", "JournalCode": "STANDARD"},
]

#: Posted time registrations per employee (the time ledger); one is already transferred.
TIME_LEDGER: list[dict[str, Any]] = [
    {"EmployeeCode": "1001", "Name": "Jens Hansen", "Date": "2026-11-19T00:00:00",
     "LogStart": "2026-11-19T06:58:00", "LogEnd": "2026-11-19T17:03:00", "WorkTypeCode": "NORMAL",
     "BreakTime": "1900-01-01T00:30:00", "StartTime": "2026-11-19T07:00:00",
     "EndTime": "2026-11-19T17:00:00", "TotalTime": 9.5, "WorkCalendarCode": "STD", "Type": "Normal",
     "Transfered": False, "Remark": "Overarbejde på Ærø", "DepartmentCode": "PROD",
     "WorkFunctionCode": "MALER", "Relative": False},
    {"EmployeeCode": "1002", "Name": "Søren Ærøskøbing", "Date": "2026-11-20T00:00:00",
     "LogStart": "2026-11-20T07:55:00", "LogEnd": "2026-11-20T12:31:00", "WorkTypeCode": "NORMAL",
     "BreakTime": "1900-01-01T00:00:00", "StartTime": "2026-11-20T08:00:00",
     "EndTime": "2026-11-20T12:30:00", "TotalTime": 4.5, "WorkCalendarCode": "STD", "Type": "Normal",
     "Transfered": False, "Remark": "-2 timer afspadsering", "DepartmentCode": "PROD",
     "WorkFunctionCode": "", "Relative": False},
    {"EmployeeCode": "1002", "Name": "Søren Ærøskøbing", "Date": "2026-11-21T00:00:00",
     "LogStart": None, "LogEnd": None, "WorkTypeCode": "FERIE", "BreakTime": None, "StartTime": None,
     "EndTime": None, "TotalTime": 7.4, "WorkCalendarCode": "STD", "Type": "Absence",
     "Transfered": False, "Remark": "", "DepartmentCode": "PROD", "WorkFunctionCode": "",
     "Relative": False},
    {"EmployeeCode": "1001", "Name": "Jens Hansen", "Date": "2026-11-01T00:00:00",
     "LogStart": None, "LogEnd": None, "WorkTypeCode": "NORMAL", "BreakTime": None, "StartTime": None,
     "EndTime": None, "TotalTime": 7.4, "WorkCalendarCode": "STD", "Type": "Normal",
     "Transfered": True, "Remark": "already exported", "DepartmentCode": "PROD",
     "WorkFunctionCode": "", "Relative": False},
]
