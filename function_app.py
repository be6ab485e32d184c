"""TimeBridge function app: registers the Blueprints. Must import cleanly with an empty environment
(an import error hides every function in Azure), so nothing here raises.

Unsafe or invalid settings are refused without hiding the functions: the check below logs the
configuration error once at start-up (an ERROR in the log stream and Application Insights), and
every invocation then fails at once with the same message (``load_all_settings()`` raises
``ConfigurationError`` before anything is read or written), visible under the function's
Invocations in the portal.

The HTTP libraries' request logging is turned down to WARNING first (``shared.platform.log_levels``):
their request lines carry URLs with Tic-Tac user names (e-mail addresses) and blob names.

Cold start: importing this module declares the bindings and nothing more (the functions import
what they use when they first run). The start-up check reads and validates the settings in a
thread of its own, so the host lists the functions without waiting for the settings' libraries.
"""

import threading

import azure.functions as func

from functions.export_ledger import bp as export_blueprint
from functions.import_file import bp as import_blueprint
from functions.resume_deferred import bp as resume_blueprint
from functions.validate_file import bp as validate_blueprint
from shared.platform.log_levels import quiet_http_libraries

quiet_http_libraries()  # no request URLs (user names, file names) from httpx or the Azure SDK in the logs

app = func.FunctionApp()
app.register_functions(import_blueprint)
app.register_functions(export_blueprint)
app.register_functions(validate_blueprint)
app.register_functions(resume_blueprint)


def _check_configuration() -> None:
    """The start-up check (never raises: an exception here would only be a thread's traceback)."""
    try:
        from shared.platform.config import report_configuration_problems
        from shared.targets.registry import check_target

        report_configuration_problems(check_target)
    except Exception:  # pragma: no cover - report_configuration_problems itself never raises
        import logging

        logging.getLogger(__name__).exception("TimeBridge could not check its configuration at start-up")


#: Not a daemon: a process that ends right after start-up still logs the check's outcome.
startup_check = threading.Thread(target=_check_configuration, name="timebridge-startup-check")
startup_check.start()
