"""User-facing errors.

Every mistake a user can make is reported as one of these, with the place
(YAML path and line, or data file, row and column), the offending value and a
fix.  The CLI prints ``str(error)`` and exits with ``error.exit_code``; it never
shows a traceback for them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

_MISSING = object()


def format_path(path: Sequence[str | int]) -> str:
    """Render a config path: ``("strategies", 0, "parameters", "fast")`` -> ``strategies[0].parameters.fast``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<config>"


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest option, or an empty string."""
    options = [str(o) for o in options]
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def show_value(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_keys(raw: dict, allowed: Iterable[str], path: Sequence[str | int], *, where: str = "here") -> None:
    """Raise ConfigError for the first key of ``raw`` not in ``allowed`` (with a did-you-mean)."""
    allowed = tuple(allowed)
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                tuple(path) + (key,),
                f"unknown key {key!r}{did_you_mean(key, allowed)}",
                fix=f"allowed keys {where}: {', '.join(allowed)}",
            )


def _rebuild(cls, state: dict, text: str):
    err = cls.__new__(cls)
    Exception.__init__(err, text)
    err.__dict__.update(state)
    return err


class SweepError(Exception):
    """Base class of errors that are the user's to fix (exit code 2, no traceback).

    They pickle with their fields (a Ray worker's error reaches the driver as the same error).
    """

    exit_code = 2

    def __reduce__(self):
        return _rebuild, (type(self), dict(self.__dict__), str(self))


class ConfigError(SweepError, ValueError):
    """A bad value in a sweep configuration.

    The message names the YAML path (and line when known), the value and the fix::

        examples/bad.yaml:7: strategies[0].parameters.fast: expected int >= 1, got 0.
          Fix: use a whole number of at least 1.
    """

    def __init__(
        self,
        path: Sequence[str | int] | str,
        problem: str,
        *,
        value: Any = _MISSING,
        fix: str | None = None,
        line: int | None = None,
        source: str | None = None,
    ) -> None:
        self.path_parts = tuple(path) if not isinstance(path, str) else None
        self.path = format_path(path) if not isinstance(path, str) else path
        self.problem = problem
        self.value = value
        self.fix = fix
        self.line = line
        self.source = source
        super().__init__(self._render())

    def located(self, source: str | None, line: int | None) -> ConfigError:
        """Return a copy that carries the file name and line (keeps the first known)."""
        err = ConfigError(
            self.path_parts if self.path_parts is not None else self.path,
            self.problem,
            value=self.value,
            fix=self.fix,
            line=self.line if self.line is not None else line,
            source=self.source or source,
        )
        return err

    def _render(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        elif self.line:
            where = f"line {self.line}: "
        text = f"{where}{self.problem}" if self.path.startswith("<") else f"{where}{self.path}: {self.problem}"
        if self.value is not _MISSING:
            text += f", got {show_value(self.value)}"
        text += "."
        if self.fix:
            text += f"\n  Fix: {self.fix}"
        return text

    def __str__(self) -> str:  # keep str() in sync after `located`
        return self._render()


class DataError(SweepError, ValueError):
    """Bad market data: names the file, row and column, the value and the fix."""

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        row: int | None = None,
        column: str | None = None,
        value: Any = _MISSING,
        fix: str | None = None,
    ) -> None:
        self.source = source
        self.problem = problem
        self.row = row
        self.column = column
        self.value = value
        self.fix = fix
        parts = [source]
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column!r}")
        text = ", ".join(parts) + f": {problem}"
        if value is not _MISSING:
            text += f", got {show_value(value)}"
        text += "."
        if fix:
            text += f"\n  Fix: {fix}"
        super().__init__(text)


class _NamedProblem(SweepError):
    """An error about one named thing: ``name: problem`` and the fix."""

    def __init__(self, name: str, problem: str, fix: str | None = None) -> None:
        self.name = name
        self.problem = problem
        self.fix = fix
        text = f"{name}: {problem}"
        if fix:
            text += f"\n  Fix: {fix}"
        super().__init__(text)


class PluginError(_NamedProblem, TypeError):
    """A user service or indicator that cannot be used: names the function and the problem."""


class BackendError(_NamedProblem, RuntimeError):
    """The compute backend (a Ray cluster) cannot run the sweep: names what failed and what to do."""


class Terminated(BaseException):
    """SIGTERM arrived during a run: stop like Ctrl-C, exit 143 (see sweep.interrupts)."""

    exit_code = 143
