"""Errors a user can fix: the CLI prints them as one line and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a refused launch: shown as one line, exit code 2, never a traceback."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def line(self) -> str:
        """The single line the user sees."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class RecipeError(UserError):
    """A recipe key holds a value that is not allowed."""

    def __init__(self, key: str, message: str, *, hint: str | None = None) -> None:
        self.key = key
        super().__init__(f"{key}: {message}" if key else message, hint=hint)


class PlanError(UserError):
    """The recipe is valid but cannot be run as asked (allocation, fit, backend limits)."""


class PreflightError(UserError):
    """The machine or service is not ready for this plan (GPUs busy, not logged in, ...)."""
