"""Atomic writes, the kill points of the crash-safety tests, and file-system faults turned into clear messages.

``atomic_path`` / ``write_atomic`` write a whole file or nothing (temporary name, fsync, rename).

``checkpoint(label)`` marks a moment where a crash must lose nothing: inside
every atomic write (the temporary file written, not yet renamed), after it,
and after each step of the clean-up.  With ``SWEEP_KILL_AT=n`` the process
kills itself with SIGKILL at the n-th checkpoint; with
``SWEEP_CHECKPOINT_LOG=file`` it appends each checkpoint's number and label to
``file``.  Neither is set in normal use, and then a checkpoint costs one test.

``storage_error`` turns an OSError from writing results into a ``StorageError``
(exit 2) that names the path and what to do.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.errors import SweepError

_KILL_AT = int(os.environ.get("SWEEP_KILL_AT", "0") or 0)
_LOG = os.environ.get("SWEEP_CHECKPOINT_LOG")
_count = 0


def checkpoint(label: str) -> None:
    """A moment a crash must survive (see the module docstring)."""
    global _count
    if not (_KILL_AT or _LOG):
        return
    _count += 1
    if _LOG:
        with open(_LOG, "a") as fh:
            fh.write(f"{_count} {label}\n")
    if _count == _KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)


class StorageError(SweepError, OSError):
    """Results could not be written or read: names the path, the cause and what to do."""

    def __init__(self, message: str, code: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.message, self.code, self.path = message, code, path

    def __str__(self) -> str:
        return self.message


_WHAT = {
    errno.ENOSPC: ("no space left on the device", "free some space, then continue with `sweep run CONFIG --resume`"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space, then continue with `sweep run CONFIG --resume`"),
    errno.EACCES: ("permission denied", "choose a folder you can write (--results-dir) or fix its permissions"),
    errno.EPERM: ("operation not permitted", "choose a folder you can write (--results-dir)"),
    errno.EROFS: ("the file system is read-only", "choose a writable folder with --results-dir"),
    errno.ENAMETOOLONG: ("the path is too long", "use a shorter results_dir or run name"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "point results_dir at a folder (or a new path)"),
    errno.EEXIST: ("it exists as a file, not a folder", "point results_dir at a folder (or a new path)"),
    errno.EISDIR: ("it is a folder, not a file", "give the path of a file"),
}


def storage_error(exc: OSError, doing: str = "writing results") -> StorageError:
    """A StorageError for an OSError met while ``doing`` something with the results folder."""
    path = exc.filename or ""
    cause, fix = _WHAT.get(exc.errno, (exc.strerror or str(exc), "check the folder and try again"))
    return StorageError(f"{doing}: {path}: {cause} ({exc.strerror or exc}).\n  Fix: {fix}", exc.errno, path)


def polars_os_error(exc: Exception) -> OSError | None:
    """The OSError behind a polars write error ('No space left on device (os error 28)'), if there is one."""
    text = str(exc)
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.ENAMETOOLONG):
        if f"os error {code})" in text:
            return OSError(code, os.strerror(code))
    return None


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary name next to ``path``; once written, fsync it and rename it to ``path``.

    A reader (or a resumed run) sees the whole file or none; on error the temporary file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            yield tmp
        except OSError:
            raise
        except Exception as exc:  # polars reports a full disk as its own error: keep the OSError it is
            cause = polars_os_error(exc)
            if cause is None:
                raise
            cause.filename = str(path)
            raise cause from None
        checkpoint(f"written {path.name} (not yet renamed)")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        checkpoint(f"renamed {path.name}")
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a whole file or nothing."""
    with atomic_path(path) as tmp:
        (tmp.write_bytes if isinstance(data, bytes) else tmp.write_text)(data)
