"""TimeBridge core: the import and export pipelines, host-free."""
