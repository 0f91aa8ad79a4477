"""One base error; each subclass builds a message a person can act on (what happened, what to do)."""

from __future__ import annotations


class TaiwaError(Exception):
    """Base class. `hint` says what to do; the CLI prints both and exits with `exit_code`."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  → {self.hint}"


class ConfigError(TaiwaError):
    """taiwa.toml is missing, malformed, or has an unknown key / wrong type."""

    exit_code = 2

    def __init__(self, file: str, key: str, problem: str, fix: str):
        self.file, self.key, self.problem, self.fix = file, key, problem, fix
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}", fix)


class StoreError(TaiwaError):
    """The database cannot be opened or is of an unknown (newer) schema."""

    exit_code = 3


class NotFound(TaiwaError):
    exit_code = 4


class InvalidTransition(TaiwaError):
    """An action was asked to move to a state its current state does not allow."""

    exit_code = 5


class StaleAction(InvalidTransition):
    """Someone changed the action since this person loaded it: their approval or edit is refused, not merged."""


class ValidationError(TaiwaError):
    """A draft cannot be approved as it is (too long, empty, ...)."""

    exit_code = 6


class ModelError(TaiwaError):
    exit_code = 7


class SendError(TaiwaError):
    """The platform refused an approved action; the action is marked failed, never retried on its own."""

    exit_code = 8


class ListenerPaused(TaiwaError):
    """A source must not be asked again before `until` (rate limit, monthly budget). Not a failure: the run
    stops cleanly, what was read so far is kept, and the next run honours the pause."""

    exit_code = 0

    def __init__(self, message: str, until, hint: str | None = None):
        super().__init__(message, hint)
        self.until = until


class PlatformAuthError(TaiwaError):
    """Credentials missing, invalid, or without the access level an endpoint needs."""

    exit_code = 9


class SendUncertain(SendError):
    """The platform call may or may not have gone through (a 5xx or a dropped connection while posting).
    The action goes to needs_check: a person looks before anything is sent again."""


class LeaseLost(TaiwaError):
    """A worker's lease on a listener stream expired and another worker took it: what it was about to store is
    dropped (the new holder reads it again from the stored cursor)."""
