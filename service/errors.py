"""Errors that end a command with one clear line instead of a traceback."""


class StartupError(RuntimeError):
    """The service cannot start or a command cannot run; the message says why, in one line."""
