"""Local stand-ins for the target systems, used by the tests and the quick-start demo."""
