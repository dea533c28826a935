"""Constraints between parameters of one entry, e.g. ``"fast < slow"``.

Expressions are parsed with :mod:`ast` and evaluated by walking a whitelist
of node types (no ``eval``): comparisons (chained too), ``and``/``or``/``not``,
``+ - * / // % **``, unary minus, numbers, strings (compared with categorical
parameters by ``==``/``!=``), ``true``/``false`` and the functions
``abs``, ``min`` and ``max``.  Evaluation is vectorised over numpy columns, so
a million candidate combinations are pruned in one go.

Example:
    >>> c = Constraint.parse("fast * 2 <= slow", {"fast": "int", "slow": "int"})
    >>> import numpy as np
    >>> c.mask({"fast": np.array([5, 10]), "slow": np.array([10, 15])}).tolist()
    [True, False]
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping

import attrs
import numpy as np

from services.limits import MAX_CONSTRAINT_CHARS as MAX_CHARS

_CMP = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCS = {"abs": np.abs, "min": np.minimum, "max": np.maximum}
_CONSTS = {"true": True, "false": False, "True": True, "False": False}


class ConstraintSyntaxError(ValueError):
    """The constraint text is not a supported expression; the message says why."""


@attrs.frozen
class Constraint:
    """A parsed constraint over named parameters of one entry.

    ``kinds`` maps parameter names to their kind; choice parameters carry
    their options as ``("choice", options)`` so that string literals become codes.
    """

    text: str
    tree: ast.Expression = attrs.field(eq=False, repr=False)
    names: frozenset[str]

    @classmethod
    def parse(cls, text: str, kinds: Mapping[str, object]) -> Constraint:
        if not isinstance(text, str) or not text.strip():
            raise ConstraintSyntaxError("a constraint must be a non-empty expression such as 'fast < slow'")
        if len(text) > MAX_CHARS:
            raise ConstraintSyntaxError(
                f"a constraint is at most {MAX_CHARS} characters (this one has {len(text):,}); split it into several"
            )
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ConstraintSyntaxError(f"cannot parse {text!r}: {exc.msg}") from None
        names: set[str] = set()
        _check(tree.body, kinds, names, text)
        if not names:
            raise ConstraintSyntaxError(f"{text!r} names no parameter, so it prunes all or nothing")
        return cls(text.strip(), tree, frozenset(names))

    def mask(self, columns: Mapping[str, np.ndarray], choices: Mapping[str, tuple] | None = None) -> np.ndarray:
        """Boolean array: which rows satisfy the constraint.

        ``columns`` holds one array per parameter (choice parameters as codes);
        ``choices`` maps choice parameters to their options.
        """
        n = len(next(iter(columns.values()))) if columns else 0
        value = _eval(self.tree.body, columns, choices or {})
        out = np.asarray(value)
        if out.dtype != bool:
            raise ConstraintSyntaxError(f"{self.text!r} is not a true/false condition (use <, ==, and, ...)")
        return np.broadcast_to(out, (n,)).copy()


def _check(node, kinds, names, text):
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _CMP:
                raise ConstraintSyntaxError(f"operator {type(op).__name__} is not allowed in {text!r}")
        operands = [node.left, *node.comparators]
        for a in operands:
            _check(a, kinds, names, text)
        for a, b, op in zip(operands, operands[1:], node.ops):
            for x, y in ((a, b), (b, a)):
                if isinstance(x, ast.Constant) and isinstance(x.value, str):
                    if not (isinstance(y, ast.Name) and _is_choice(kinds.get(y.id))):
                        raise ConstraintSyntaxError(
                            f"the string {x.value!r} in {text!r} can only be compared with a categorical parameter"
                        )
                    options = kinds[y.id][1]
                    if x.value not in options:
                        raise ConstraintSyntaxError(
                            f"{x.value!r} is not an option of {y.id} (options: {', '.join(options)}) in {text!r}"
                        )
                    if type(op) not in (ast.Eq, ast.NotEq):
                        raise ConstraintSyntaxError(
                            f"categorical {y.id} can only be compared with == or != in {text!r}"
                        )
        return
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, kinds, names, text)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            raise ConstraintSyntaxError(f"operator {type(node.op).__name__} is not allowed in {text!r}")
        _check(node.operand, kinds, names, text)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BIN:
            raise ConstraintSyntaxError(f"operator {type(node.op).__name__} is not allowed in {text!r}")
        _check(node.left, kinds, names, text)
        _check(node.right, kinds, names, text)
        for side in (node.left, node.right):
            if isinstance(side, ast.Name) and _is_choice(kinds.get(side.id)):
                raise ConstraintSyntaxError(f"categorical {side.id} cannot be used in arithmetic in {text!r}")
            if isinstance(side, ast.Constant) and isinstance(side.value, str):
                raise ConstraintSyntaxError(f"a string cannot be used in arithmetic in {text!r}")
        return
    if isinstance(node, ast.Name):
        if node.id in _CONSTS:
            return
        if node.id not in kinds:
            from services.errors import did_you_mean

            raise ConstraintSyntaxError(
                f"{text!r} names {node.id!r}, which is not a parameter of this entry{did_you_mean(node.id, kinds)}; "
                f"parameters: {', '.join(sorted(kinds))}"
            )
        names.add(node.id)
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bool, int, float, str)):
            return
        raise ConstraintSyntaxError(f"constant {node.value!r} is not allowed in {text!r}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS or node.keywords:
            raise ConstraintSyntaxError(f"only abs(), min() and max() may be called in {text!r}")
        want = 1 if node.func.id == "abs" else 2
        if len(node.args) != want:
            raise ConstraintSyntaxError(f"{node.func.id}() takes {want} argument(s) in {text!r}")
        for a in node.args:
            _check(a, kinds, names, text)
        return
    raise ConstraintSyntaxError(f"{type(node).__name__} is not allowed in a constraint ({text!r})")


def _is_choice(kind) -> bool:
    return isinstance(kind, tuple) and kind and kind[0] == "choice"


def _eval(node, cols, choices):
    if isinstance(node, ast.Compare):
        result = None
        left = _eval(node.left, cols, choices)
        left_node = node.left
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, cols, choices)
            lv = _code(left_node, left, right_node, choices)
            rv = _code(right_node, right, left_node, choices)
            part = _CMP[type(op)](lv, rv)
            result = part if result is None else np.logical_and(result, part)
            left, left_node = right, right_node
        return result
    if isinstance(node, ast.BoolOp):
        parts = [np.asarray(_eval(v, cols, choices), dtype=bool) for v in node.values]
        fn = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        out = parts[0]
        for p in parts[1:]:
            out = fn(out, p)
        return out
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, cols, choices)
        if isinstance(node.op, ast.Not):
            return np.logical_not(v)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a = np.asarray(_eval(node.left, cols, choices), dtype=float)
        b = np.asarray(_eval(node.right, cols, choices), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return _BIN[type(node.op)](a, b)
    if isinstance(node, ast.Name):
        if node.id in _CONSTS:
            return _CONSTS[node.id]
        return cols[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call):
        args = [np.asarray(_eval(a, cols, choices), dtype=float) for a in node.args]
        return _FUNCS[node.func.id](*args)
    raise ConstraintSyntaxError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover


def _code(node, value, other, choices):
    """A string literal compared with a categorical parameter becomes that option's code."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and isinstance(other, ast.Name):
        return float(choices[other.id].index(node.value))
    return value
