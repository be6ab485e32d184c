"""Library loggers that would put personal data into the logs, turned down to WARNING.

httpx logs every request line at INFO (``HTTP Request: GET …/v1/users/<userName> "HTTP/1.1 200 OK"``),
and a Tic-Tac ``userName`` is an e-mail address by default (``TICTAC_USERNAME_TEMPLATE``); the Azure
SDK's HTTP logging policy logs every storage and Key Vault request URL at INFO, blob names (the
ERP's file names) included; httpcore logs connection details at DEBUG. In Azure every log line of
the worker reaches Application Insights (docs/administrator.md: Personal data), so ``function_app.py`` calls
:func:`quiet_http_libraries` at start-up: a warning or an error of these libraries is still logged,
their request lines are not. TimeBridge's own log lines name employees by their employee code,
never by a user name, and escape text from a target (``shared/platform/safe_text.visible``).
"""

from __future__ import annotations

import logging

#: The loggers set to WARNING (their request and connection lines carry URLs).
QUIET_LOGGERS = ("httpx", "httpcore", "azure.core.pipeline.policies.http_logging_policy")


def quiet_http_libraries() -> None:
    """Set :data:`QUIET_LOGGERS` to WARNING (idempotent; never raises)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


__all__ = ["QUIET_LOGGERS", "quiet_http_libraries"]
