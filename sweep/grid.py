"""Grid detection: turn one YAML parameter value into the axis of values it sweeps.

- a scalar is a one-value axis;
- a list is a grid of its values (duplicates dropped, sorted);
- ``{start, stop, step}`` is an inclusive range: ``{start: 5, stop: 50, step: 5}``
  is 5, 10, ..., 50 (the stop is included when it lies on the grid).  Float
  ranges are computed in decimal, so ``{start: 0.1, stop: 0.3, step: 0.1}``
  is exactly [0.1, 0.2, 0.3] with no drift;
- strings of a categorical parameter are its options (encoded to integers for
  numba, decoded again in results).

Example:
    >>> from services.params import Float
    >>> parse_axis(Float("x", 0.1), {"start": 0.1, "stop": 0.3, "step": 0.1}, ("x",)).values
    (0.1, 0.2, 0.3)
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from services.errors import ConfigError, did_you_mean
from services.params import Param

RANGE_KEYS = ("start", "stop", "step")


@attrs.frozen
class Axis:
    """The values one parameter takes, in canonical (sorted) order."""

    name: str
    param: Param
    values: tuple
    path: tuple

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def is_grid(self) -> bool:
        return len(self.values) > 1

    def codes(self) -> list[float]:
        return [self.param.encode(v) for v in self.values]


def _decimal(value: Any, path, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            path + (key,),
            f"range {key} must be a number",
            value=value,
            fix="write e.g. {start: 5, stop: 50, step: 5}",
        )
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:  # pragma: no cover - inf/nan come through as floats
        d = Decimal("NaN")
    if not d.is_finite():
        raise ConfigError(path + (key,), f"range {key} must be finite", value=value, fix="use a finite number")
    return d


def range_size(spec: dict, path: Sequence) -> int:
    """Number of values of an inclusive range, checking its shape first."""
    path = tuple(path)
    extra = [k for k in spec if k not in RANGE_KEYS]
    if extra:
        k = extra[0]
        raise ConfigError(
            path + (k,),
            f"unknown range key {k!r}{did_you_mean(k, RANGE_KEYS)}",
            fix="a range is {start, stop, step} (stop included)",
        )
    missing = [k for k in ("start", "stop") if k not in spec]
    if missing:
        raise ConfigError(
            path,
            f"range is missing {' and '.join(missing)}",
            value=spec,
            fix="write {start: 5, stop: 50, step: 5} (stop included; step defaults to 1)",
        )
    start = _decimal(spec["start"], path, "start")
    stop = _decimal(spec["stop"], path, "stop")
    step = _decimal(spec.get("step", 1), path, "step")
    if step == 0:
        raise ConfigError(
            path + ("step",), "range step must not be 0", value=spec.get("step"), fix="use a positive step"
        )
    if step < 0:
        raise ConfigError(
            path + ("step",),
            "range step must be positive (ranges run upward from start to stop)",
            value=spec.get("step"),
            fix="use a positive step and start <= stop",
        )
    if stop < start:
        raise ConfigError(
            path,
            f"range stop ({spec['stop']}) is below start ({spec['start']})",
            value=spec,
            fix="swap start and stop",
        )
    return int((stop - start) // step) + 1


def expand_range(spec: dict, path: Sequence) -> list:
    """Values of an inclusive range; ints stay ints, floats are computed in decimal."""
    n = range_size(spec, path)
    start = _decimal(spec["start"], path, "start")
    step = _decimal(spec.get("step", 1), path, "step")
    all_int = all(isinstance(spec.get(k, 1), int) and not isinstance(spec.get(k, 1), bool) for k in RANGE_KEYS)
    if all_int:
        return [int(start + i * step) for i in range(n)]
    return [float(start + i * step) for i in range(n)]


def parse_axis(
    param: Param, raw: Any, path: Sequence, *, max_values: int | None = None, name: str | None = None
) -> Axis:
    """Detect scalar / list / range in ``raw`` and validate every value against ``param``."""
    path = tuple(path)
    if isinstance(raw, dict):
        if param.kind in ("choice", "bool"):
            raise ConfigError(
                path,
                f"a range does not apply to a {param.kind} parameter",
                value=raw,
                fix=f"list the values instead, e.g. [{', '.join(repr(c) for c in param.space[:2])}]",
            )
        size = range_size(raw, path)
        if max_values is not None and size > max_values:
            raise ConfigError(
                path,
                f"range has {size:,} values, so the sweep has more than the limit of {max_values:,} combinations",
                value=raw,
                fix="use a larger step, or raise max_combinations in the config",
            )
        items = expand_range(raw, path)
        checked = [param.check(v, path) for v in items]
    elif isinstance(raw, list):
        if not raw:
            raise ConfigError(
                path, "empty list: a grid needs at least one value", value=raw, fix="list one or more values"
            )
        checked = []
        for i, v in enumerate(raw):
            if isinstance(v, (list, dict)):
                raise ConfigError(
                    path + (i,),
                    "grid values must be plain values, not lists or mappings",
                    value=v,
                    fix="write a flat list like [10, 20, 30]",
                )
            checked.append(param.check(v, path + (i,)))
    elif raw is None:
        raise ConfigError(path, "missing value", value=raw, fix=f"give {param.expected}, a list or a range")
    else:
        checked = [param.check(raw, path)]
    unique: dict[Any, Any] = {}
    for v in checked:
        unique.setdefault((type(v) is float, v) if param.kind != "choice" else v, v)
    values = sorted(unique.values(), key=param.sort_key)
    return Axis(name or param.name, param, tuple(values), path)
