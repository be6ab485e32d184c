"""The import: an ERP file from the input container to the target system (parse, plan, apply, report)."""
