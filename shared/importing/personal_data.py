"""Personal data TimeBridge does not pass on unless told to: the CPR number.

The Danish CPR number (Employee position 8, ``sCPRNo``) identifies a person for life. SmartTID
does not need it to register time, so by default it is removed from every employee record before
anything is planned or sent; an administrator who needs it in the target system sets the app
setting ``SEND_CPR_NUMBER`` to ``true``. The archived copy of the input file still holds it (the
original bytes); the archive's retention (``archiveRetentionDays``) bounds how long. No report
(receipt, error report, dry-run report) ever shows a CPR value: :data:`WITHHELD` stands in its place.
"""

from __future__ import annotations

from shared.importing.parsing import ParsedFile
from shared.records.layouts import RecordType
from shared.records.record import Record

CPR_FIELD = "sCPRNo"
#: What a report shows in place of a CPR number.
WITHHELD = "(withheld)"


class CprWithholding:
    """Unless ``send_cpr_number``, drops the CPR number from each employee record it is given
    (records of a file read in batches pass through it one by one)."""

    def __init__(self, send_cpr_number: bool) -> None:
        self.send = send_cpr_number
        self.lines = 0

    def __call__(self, record: Record) -> None:
        if (not self.send and record.record_type is RecordType.EMPLOYEE
                and record.values.pop(CPR_FIELD, None) not in (None, "")):
            self.lines += len(record.lines)

    def notes(self) -> list[str]:
        """The receipt note: on how many lines a CPR number was withheld and how to send it (or none)."""
        if not self.lines:
            return []
        return [
            f"The CPR numbers in this file (Employee position 8, sCPRNo, on {self.lines} line(s)) were not sent "
            "to the target system: the app setting SEND_CPR_NUMBER is off. If the target system needs them, set "
            "SEND_CPR_NUMBER to true (with azd: the parameter sendCprNumber) and upload the file again."
        ]


def withhold_cpr_numbers(parsed: ParsedFile, send_cpr_number: bool) -> list[str]:
    """Unless ``send_cpr_number``, drop the CPR number from every employee record in ``parsed``;
    returns the receipt notes (see :meth:`CprWithholding.notes`)."""
    withholding = CprWithholding(send_cpr_number)
    for record in parsed.records:
        withholding(record)
    return withholding.notes()
