"""Every error TimeBridge raises on purpose, with one base: :class:`TimeBridgeError`.

Each message is written for the administrator: what is wrong, where, and what to do. Catch the
narrowest class that fits; ``TimeBridgeError`` marks an error TimeBridge anticipated, as opposed to
a bug. Private, module-local signals (a response worth retrying) stay in their modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta


class TimeBridgeError(Exception):
    """Base of every error TimeBridge raises on purpose."""


# --- platform: settings and secrets -----------------------------------------------------------------
class ConfigurationError(TimeBridgeError):
    """A setting is missing or invalid; the message tells the administrator what to change."""


class MissingSecretError(TimeBridgeError):
    """A secret is not configured; the message says where it was looked for and how to set it."""


class SecretStoreUnavailableError(TimeBridgeError):
    """The secret store (Key Vault) could not be reached or denied access; the message says what to check."""


# --- import: the file and its values ---------------------------------------------------------------
class UnreadableFileError(TimeBridgeError):
    """The file as a whole cannot be imported (empty, binary, not ``;``-separated, too large)."""

    def __init__(self, reason: str, action: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.action = action


class FieldValueError(TimeBridgeError, ValueError):
    """The text of one field cannot be used; ``reason`` and ``action`` are for the administrator."""

    def __init__(self, reason: str, action: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.action = action


# --- targets ------------------------------------------------------------------------------------
class ApiRejectedError(TimeBridgeError):
    """The target system refused this one request (e.g. a 400 with a message): not retried."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ApiUnavailableError(TimeBridgeError):
    """The target system could not be reached or kept failing after every retry.

    ``maybe_applied``: a write whose outcome is unknown (the request may have been processed and
    its answer lost) and that could not be checked afterwards. ``retry_after``: seconds the target
    asked us to wait (429 ``Retry-After``), if any.
    """

    def __init__(self, message: str, *, maybe_applied: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied
        self.retry_after = retry_after


class AuthenticationFailedError(ApiUnavailableError):
    """The target system refused the credentials: nothing can be done until they are fixed."""


class CircuitOpenError(ApiUnavailableError):
    """The circuit breaker is open: the target counts as unavailable for the rest of this run."""


class AmbiguousMatchError(TimeBridgeError):
    """More than one target object matches one ERP record: nothing is linked, the line is rejected."""

    def __init__(self, message: str, candidates: Sequence[str]) -> None:
        super().__init__(message)
        self.message = message
        self.candidates = tuple(candidates)


class CallLimitReachedError(TimeBridgeError):
    """A target refused a call because of its call limit (Tic-Tac's 429); no call succeeds before
    ``until``. Connectors raise subclasses of it (:class:`BudgetExhaustedError`)."""

    until: datetime


class BudgetExhaustedError(ApiUnavailableError, CallLimitReachedError):
    """Tic-Tac answered 429: its daily call limit is used up. Never retried by the client.

    ``retry_after_seconds`` is Tic-Tac's ``Retry-After`` (or the default guess); ``until`` is the
    moment after which a call may succeed (``CallBudget.spend`` blocks the shared budget until
    then). A subclass of :class:`ApiUnavailableError`, so code unaware of budgets still stops safely.
    """

    def __init__(self, retry_after_seconds: int, *, now: datetime | None = None, target: str = "Tic-Tac") -> None:
        self.retry_after_seconds = retry_after_seconds
        self.until = (now or datetime.now(UTC)) + timedelta(seconds=retry_after_seconds)
        super().__init__(
            f"{target}'s daily call limit is used up; the next call is possible in "
            f"{retry_after_seconds} seconds (after {self.until:%Y-%m-%d %H:%M} UTC)"
        )


class AllowanceExceededError(TimeBridgeError):
    """A plan tried to make more calls than it reserved: the call was not made."""


class BudgetBusyError(TimeBridgeError):
    """The budget entity kept changing under this instance (heavy contention): nothing was granted."""


# --- export -------------------------------------------------------------------------------------
class ExportFailedError(TimeBridgeError):
    """The run cannot go on safely; nothing beyond the committed file was marked."""


class ExportStateChangedError(TimeBridgeError):
    """Another run changed the state row since this run read it: this run must stop."""
