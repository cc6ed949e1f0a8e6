"""Errors that end a command with a message instead of a traceback."""

__all__ = ["OcoError", "UsageError"]


class OcoError(Exception):
    """An expected failure: the CLI prints its message (never a traceback) and exits.

    `exit_code` follows the CLI convention: 1 runtime failure, 2 usage or configuration error.
    Messages must never contain a worker token's secret.
    """

    exit_code = 1


class UsageError(OcoError):
    """The command line or the environment it names is wrong; exit code 2."""

    exit_code = 2
