"""Feature specs: the names services use to ask the feature hub for inputs.

A spec is ``indicator(input, ..., param, ...)`` with an optional ``.output``
for indicators that produce several series, e.g. ``sma(close,20)``,
``bbands(close,20,2.0).upper`` or ``sma(returns(close,1),50)``.  Inputs are
bar columns (open, high, low, close, volume) or other specs.  Every spec has
one canonical text, which is what the expander and the hub deduplicate on.

Example:
    >>> str(parse_feature("SMA( close , 20 )"))
    'sma(close,20)'
"""

from __future__ import annotations

import re

import attrs

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?[a-z]?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[(),.]))"
)


class FeatureSpecError(ValueError):
    """A feature spec that cannot be parsed or names an unknown indicator/column."""


@attrs.frozen
class FeatureNode:
    """One parsed spec: an indicator applied to inputs with parameters, or a bar column."""

    name: str
    inputs: tuple = ()
    params: tuple = ()
    output: str | None = None

    @property
    def is_column(self) -> bool:
        return not self.inputs and not self.params and self.name in BAR_COLUMNS and self.output is None

    @property
    def base(self) -> FeatureNode:
        """The indicator computation without the output selector (what the hub computes once)."""
        return attrs.evolve(self, output=None)

    def __str__(self) -> str:
        if self.is_column:
            return self.name
        args = [str(i) for i in self.inputs] + [_fmt(p) for p in self.params]
        text = f"{self.name}({','.join(args)})"
        return f"{text}.{self.output}" if self.output else text


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _tokenize(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FeatureSpecError(f"cannot read {text[pos:]!r} in feature spec {text!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_raw(text: str):
    """Parse spec text into nested tuples ``(name, [args], output)`` without registry checks."""
    toks = _tokenize(text)
    if not toks:
        raise FeatureSpecError("empty feature spec")
    i = 0

    def expr():
        nonlocal i
        kind, val = toks[i]
        if kind == "num":
            i += 1
            return ("num", val)
        if kind != "name":
            raise FeatureSpecError(f"unexpected {val!r} in feature spec {text!r}")
        i += 1
        if i < len(toks) and toks[i] == ("op", "("):
            i += 1
            args = []
            if toks[i] != ("op", ")"):
                while True:
                    args.append(expr())
                    if i >= len(toks):
                        raise FeatureSpecError(f"missing ')' in feature spec {text!r}")
                    if toks[i] == ("op", ","):
                        i += 1
                        continue
                    break
            if i >= len(toks) or toks[i] != ("op", ")"):
                raise FeatureSpecError(f"missing ')' in feature spec {text!r}")
            i += 1
            output = None
            if i < len(toks) and toks[i] == ("op", "."):
                if i + 1 >= len(toks) or toks[i + 1][0] != "name":
                    raise FeatureSpecError(f"expected an output name after '.' in {text!r}")
                output = toks[i + 1][1].lower()
                i += 2
            return ("call", val.lower(), args, output)
        return ("name", val.lower())

    try:
        tree = expr()
    except IndexError:
        raise FeatureSpecError(f"feature spec {text!r} ends too early") from None
    if i != len(toks):
        raise FeatureSpecError(f"unexpected {toks[i][1]!r} after the end of feature spec {text!r}")
    return tree


def parse_feature(text: str, indicators=None) -> FeatureNode:
    """Parse and canonicalise a spec, checking indicators, arity and parameter values.

    ``indicators`` maps names to IndicatorSpec; by default the global registry.
    """
    if indicators is None:
        from .catalog import indicator_registry

        indicators = indicator_registry()
    return _resolve(parse_raw(text), indicators, text)


def _resolve(tree, indicators, text) -> FeatureNode:
    kind = tree[0]
    if kind == "name":
        name = tree[1]
        if name in BAR_COLUMNS:
            return FeatureNode(name)
        if name in indicators:
            raise FeatureSpecError(f"{name!r} is an indicator: call it with arguments, e.g. {name}(close, ...)")
        raise FeatureSpecError(
            f"unknown column {name!r} in feature spec {text!r}; columns are {', '.join(BAR_COLUMNS)}"
        )
    if kind == "num":
        raise FeatureSpecError(f"a number ({tree[1]}) cannot be an input in feature spec {text!r}")
    _, name, args, output = tree
    if name in BAR_COLUMNS:
        raise FeatureSpecError(f"{name!r} is a bar column, not an indicator, in {text!r}")
    spec = indicators.get(name)
    if spec is None:
        from services.errors import did_you_mean

        raise FeatureSpecError(
            f"unknown indicator {name!r} in feature spec {text!r}{did_you_mean(name, indicators)}; "
            f"known: {', '.join(sorted(indicators))}"
        )
    n_in = len(spec.inputs)
    if len(args) < n_in:
        raise FeatureSpecError(
            f"{name} takes {n_in} input(s) ({', '.join(spec.inputs)}) then parameters "
            f"({', '.join(p.name for p in spec.params)}); {text!r} gives {len(args)} argument(s)"
        )
    if len(args) > n_in + len(spec.params):
        raise FeatureSpecError(
            f"{name} takes at most {n_in + len(spec.params)} arguments "
            f"({', '.join(list(spec.inputs) + [p.name for p in spec.params])}); {text!r} gives {len(args)}"
        )
    inputs = tuple(_resolve(a, indicators, text) for a in args[:n_in])
    params = []
    for j, p in enumerate(spec.params):
        if n_in + j < len(args):
            a = args[n_in + j]
            raw = a[1]
            if a[0] == "num":
                value = _number(raw)
            elif a[0] == "name":
                value = raw
            else:
                raise FeatureSpecError(f"parameter {p.name} of {name} must be a value, not a spec, in {text!r}")
        else:
            value = p.default
        try:
            params.append(p.check(value, (f"{name}.{p.name}",)))
        except ValueError as exc:
            raise FeatureSpecError(f"in feature spec {text!r}: {exc}") from None
    if output is not None and output not in spec.outputs:
        raise FeatureSpecError(f"{name} has outputs {', '.join(spec.outputs)}; {text!r} asks for {output!r}")
    if output is None and len(spec.outputs) > 1:
        output = spec.outputs[0]
    return FeatureNode(name, inputs, tuple(params), output)


def _number(raw: str):
    if raw[-1].isalpha() and raw[-1] not in "eE":
        return raw  # a duration like 30d
    try:
        return int(raw)
    except ValueError:
        return float(raw)
