"""Errors a user can fix. Every entry point turns them into one clear line and exit code 2."""


class InputError(ValueError):
    """Bad input: the message says what is wrong and what to do about it."""


class CancelledError(RuntimeError):
    """The user cancelled a running job."""


class ModelError(RuntimeError):
    """A model file is missing, altered (sha256 mismatch) or cannot be loaded safely."""
