"""Azure Functions Blueprints: thin binding glue around the pipelines in ``shared``."""
