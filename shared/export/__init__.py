"""The export slice: new SmartTID ledger entries → one file per run in the output container."""

from shared.export.receipt import ExportReceipt
from shared.export.run import run_export

__all__ = ["ExportReceipt", "run_export"]
