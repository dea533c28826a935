"""Typed parameters of services and indicators.

A parameter knows its kind, default, allowed range and a default search space,
so that a YAML value can be checked at config time with the YAML path in the
message, and encoded as a float64 for numba (categoricals become integer codes).

Example:
    >>> p = Int("fast", default=10, low=1, space=(5, 10, 20))
    >>> p.check(12, ("strategies", 0, "parameters", "fast"))
    12
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import attrs

from services.errors import ConfigError, did_you_mean

KINDS = ("int", "float", "bool", "choice", "duration")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhmb]?)\s*$")
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes", "b": "bars", "": "bars"}


def _bound_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


@attrs.frozen
class Param:
    """One parameter: ``kind`` is int, float, bool, choice or duration.

    ``low``/``high`` are inclusive bounds; ``space`` is the default grid used
    by ``sweep services`` and the property-testing kit.
    """

    name: str
    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    space: tuple = ()
    doc: str = ""

    @property
    def expected(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "duration":
            low = f" (at least {self.low:g} bars)" if self.low is not None else ""
            return f"a duration such as 30d, 4h, 90m or a number of bars{low}"
        return f"{self.kind}{_bound_text(self.low, self.high)}"

    def check(self, value: Any, path: Sequence[str | int]) -> Any:
        """Validate one value; return it normalised (int, float, bool, str) or raise ConfigError."""
        kind = self.kind
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise ConfigError(path, f"expected {self.expected}", value=value, fix="write true or false")
        if kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            hint = did_you_mean(value, self.choices) if isinstance(value, str) else ""
            raise ConfigError(
                path,
                f"expected {self.expected}{hint}",
                value=value,
                fix=f"use one of: {', '.join(self.choices)}",
            )
        if kind == "duration":
            return self._check_duration(value, path)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(
                path,
                f"expected {self.expected}",
                value=value,
                fix=f"write a number{_bound_text(self.low, self.high)}, a list of numbers, "
                "or a range {start, stop, step}",
            )
        if kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise ConfigError(path, f"expected {self.expected}", value=value, fix="use a whole number")
                value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(path, f"expected a finite {self.expected}", value=value, fix="use a finite number")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ConfigError(
                path,
                f"expected {self.expected}",
                value=value,
                fix=f"use a value{_bound_text(self.low, self.high)}",
            )
        return value

    def _check_duration(self, value: Any, path: Sequence[str | int]) -> str:
        if isinstance(value, bool):
            value = None
        if isinstance(value, int):
            value = f"{value}"
        elif isinstance(value, float) and value.is_integer():
            value = f"{int(value)}"
        m = _DURATION.match(value) if isinstance(value, str) else None
        if not m:
            raise ConfigError(path, f"expected {self.expected}", value=value, fix="write e.g. 30d or 200")
        amount = float(m.group(1))
        # bounds are in bars: they are checked here for bar counts, and by the
        # feature hub once the data's bars per day turn days/hours into bars
        in_bars = m.group(2) in ("", "b")
        if (
            amount <= 0
            or (in_bars and self.low is not None and amount < self.low)
            or (in_bars and self.high is not None and amount > self.high)
        ):
            raise ConfigError(
                path, f"expected {self.expected}", value=value, fix=f"use an amount{_bound_text(self.low, self.high)}"
            )
        text = m.group(1).rstrip("0").rstrip(".") if "." in m.group(1) else m.group(1)
        unit = m.group(2)
        return text + ("" if unit in ("", "b") else unit)

    def encode(self, value: Any) -> float:
        """Float64 code for numba: choices by index, bools 0/1, numbers as is."""
        if self.kind == "choice":
            return float(self.choices.index(value))
        if self.kind == "bool":
            return 1.0 if value else 0.0
        if self.kind == "duration":
            raise TypeError("durations are resolved to bars by the feature hub, not encoded")
        return float(value)

    def decode(self, code: float) -> Any:
        if self.kind == "choice":
            return self.choices[int(code)]
        if self.kind == "bool":
            return bool(code)
        if self.kind == "int":
            return int(code)
        return float(code)

    def sort_key(self, value: Any) -> Any:
        return self.choices.index(value) if self.kind == "choice" else value

    def describe(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "default": self.default}
        if self.low is not None:
            out["low"] = self.low
        if self.high is not None:
            out["high"] = self.high
        if self.choices:
            out["choices"] = list(self.choices)
        if self.space:
            out["space"] = list(self.space)
        if self.doc:
            out["doc"] = self.doc
        return out


def duration_to_bars(text: str, bars_per_day: float) -> int:
    """Resolve a canonical duration (``30d``, ``4h``, ``90m``, ``200``) to a bar count >= 1."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    amount, unit = float(m.group(1)), m.group(2)
    if unit == "d":
        bars = amount * bars_per_day
    elif unit == "h":
        bars = amount * bars_per_day / _session_hours(bars_per_day)
    elif unit == "m":
        bars = amount * bars_per_day / (_session_hours(bars_per_day) * 60.0)
    else:
        bars = amount
    return max(1, int(round(bars)))


def _session_hours(bars_per_day: float) -> float:
    # Durations in hours/minutes are measured in trading time: a day of data is
    # taken to be 6.5 hours (a US equity session) unless the data is 24h.
    return 24.0 if bars_per_day >= 1440 or bars_per_day in (24, 96, 288) else 6.5


def Int(
    name: str,
    default: int,
    *,
    low: int | None = None,
    high: int | None = None,
    space: Sequence[int] = (),
    doc: str = "",
) -> Param:
    """An integer parameter with inclusive bounds."""
    return Param(name, "int", default, low, high, (), tuple(space) or (default,), doc)


def Float(
    name: str,
    default: float,
    *,
    low: float | None = None,
    high: float | None = None,
    space: Sequence[float] = (),
    doc: str = "",
) -> Param:
    """A float parameter with inclusive bounds."""
    return Param(name, "float", float(default), low, high, (), tuple(float(s) for s in space) or (float(default),), doc)


def Bool(name: str, default: bool, *, doc: str = "") -> Param:
    """A boolean flag (swept as [false, true])."""
    return Param(name, "bool", bool(default), None, None, (), (False, True), doc)


def Choice(name: str, choices: Sequence[str], default: str | None = None, *, doc: str = "") -> Param:
    """A categorical parameter; values are encoded as their index in ``choices``."""
    choices = tuple(choices)
    if not choices:
        raise ValueError(f"{name}: a Choice needs at least one option")
    default = choices[0] if default is None else default
    if default not in choices:
        raise ValueError(f"{name}: default {default!r} is not among {choices}")
    return Param(name, "choice", default, None, None, choices, choices, doc)


def Duration(
    name: str,
    default: str | int,
    *,
    low: float | None = 1,
    high: float | None = None,
    space: Sequence[str | int] = (),
    doc: str = "",
) -> Param:
    """A look-back given as bars (``200``) or calendar-free trading time (``30d``, ``4h``)."""
    return Param(name, "duration", str(default), low, high, (), tuple(str(s) for s in space) or (str(default),), doc)
