"""The ERP record model: record types, field tables, values, records and line errors."""
