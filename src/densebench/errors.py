"""User-facing errors: the CLI prints their message on one line instead of a traceback."""

from __future__ import annotations

import errno


class DenseBenchError(Exception):
    """A mistake the user can fix (bad option, missing file); the message names the fix."""


class ConfigError(DenseBenchError):
    """An unknown name or an invalid value in the configuration."""


class DataError(DenseBenchError):
    """A dataset file that is missing, unreadable or inconsistent."""


class WeightsError(DenseBenchError):
    """Model weights that cannot be found, read or loaded strictly."""


class OutputError(DenseBenchError):
    """A file that cannot be written: a read-only or full disk, a quota, missing permissions."""


# errno values that mean "this place cannot be written", not a bug: EACCES, EPERM, EROFS, ENOSPC, EDQUOT, EFBIG
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def as_user_error(exc: BaseException) -> BaseException:
    """An OSError from a read-only, full or forbidden output place becomes an `OutputError` line naming
    the file and the fix; any other exception is returned unchanged."""
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        where = exc.filename or "the output directory"
        return OutputError(
            f"cannot write {where}: {exc.strerror or exc}; free space or fix the permissions "
            "there, or choose another output_dir (finished work is kept; rerun the command)"
        )
    return exc


def one_line(exc: BaseException) -> str:
    """What the user sees of an error. One raised in a DataLoader worker comes back with the worker's
    whole traceback in its text ("Caught DataError in DataLoader worker process 0. Original
    Traceback ..."); its own message is the last line, after the exception's name."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text


def print_error(exc: BaseException) -> None:
    """One line on stderr, never wrapped, so scripts and logs can grep it."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(one_line(exc))}", highlight=False)
