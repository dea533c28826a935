"""Safe YAML loading that remembers where every value came from.

``load_yaml`` returns plain Python data plus a ``LineMap`` so that later
validation can say ``config.yaml:12: strategies[0].parameters.fast: ...``.
Duplicate keys, which PyYAML silently accepts, are an error here.  So are
inputs that would exhaust the machine: more than ``MAX_NODES`` values once
anchors and aliases are expanded (a few hundred bytes of aliases can expand to
gigabytes), nesting deeper than ``MAX_DEPTH``, and files over ``MAX_BYTES``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from services.errors import ConfigError
from services.limits import MAX_YAML_BYTES as MAX_BYTES
from services.limits import MAX_YAML_DEPTH as MAX_DEPTH
from services.limits import MAX_YAML_NODES as MAX_NODES


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 needs ``1.0e-3``)."""


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


class LineMap:
    """Line numbers (1-based) of values and keys, by config path tuple."""

    def __init__(self, source: str | None = None) -> None:
        self.source = source
        self.values: dict[tuple, int] = {}
        self.keys: dict[tuple, int] = {}

    def line(self, path: tuple) -> int | None:
        """Line of the key at ``path`` (or of the value, for list items), else of the nearest parent."""
        path = tuple(path)
        while True:
            if path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]

    def locate(self, err: ConfigError, path: tuple | None = None) -> ConfigError:
        """Attach source and line to an error raised without them."""
        if path is None:
            return err.located(self.source, None)
        return err.located(self.source, self.line(path))


_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp")}


def _convert(loader: _Loader, node: yaml.Node, path: tuple, lines: LineMap) -> Any:
    lines.values[path] = node.start_mark.line + 1
    if node.tag not in _PLAIN_TAGS:
        raise ConfigError(
            path,
            f"YAML tag not allowed: {node.tag.replace('tag:yaml.org,2002:', '!!')}",
            fix="remove the tag (e.g. !!python/...): a sweep config is plain YAML - mappings, lists, numbers and text",
            line=node.start_mark.line + 1,
            source=lines.source,
        )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or isinstance(key, bool):
                raise ConfigError(
                    path + (str(key),),
                    "mapping keys must be plain names",
                    value=key,
                    fix="write the key as a word, e.g. `fast:`",
                    line=key_node.start_mark.line + 1,
                    source=lines.source,
                )
            key = str(key)
            sub = path + (key,)
            if key in out:
                raise ConfigError(
                    sub,
                    f"key {key!r} appears twice (first on line {lines.keys[sub]})",
                    fix="keep one of them; later keys do not override earlier ones here",
                    line=key_node.start_mark.line + 1,
                    source=lines.source,
                )
            lines.keys[sub] = key_node.start_mark.line + 1
            out[key] = _convert(loader, value_node, sub, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, path + (i,), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _bounds(root: yaml.Node, source: str | None) -> None:
    """Refuse a node graph whose expansion has too many values or too deep a nesting (aliases share nodes)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack = [(root, False)]
    while stack:  # iterative post-order walk: no recursion limit to hit
        node, done = stack.pop()
        key = id(node)
        if key in size:
            continue
        children = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        size[key] = 1 + sum(size.get(id(c), 1) for c in children)
        depth[key] = 1 + max((depth.get(id(c), 1) for c in children), default=0)
        line = node.start_mark.line + 1
        if size[key] > MAX_NODES:
            raise ConfigError(
                "<yaml>",
                f"the config expands to more than {MAX_NODES:,} values (anchors and aliases repeat what they point to)",
                fix="write the config out without deeply repeated aliases (&anchor / *alias)",
                line=line,
                source=source,
            )
        if depth[key] > MAX_DEPTH:
            raise ConfigError(
                "<yaml>",
                f"the config nests deeper than {MAX_DEPTH} levels",
                fix="a sweep config needs a few levels; flatten the structure",
                line=line,
                source=source,
            )


def parse_yaml(text: str, source: str | None = None) -> tuple[Any, LineMap]:
    """Parse YAML text safely; return ``(data, LineMap)``.

    Example:
        >>> data, lines = parse_yaml("a:\\n  b: [1, 2]\\n")
        >>> data, lines.line(("a", "b"))
        ({'a': {'b': [1, 2]}}, 2)
    """
    lines = LineMap(source)
    if len(text) > MAX_BYTES:
        raise ConfigError(
            "<yaml>",
            f"the config file is larger than {MAX_BYTES // 2**20} MiB",
            fix="a sweep config is a few KiB",
            source=source,
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        _bounds(node, source)
        return _convert(loader, node, (), lines), lines
    except RecursionError:
        raise ConfigError(
            "<yaml>", "the config nests too deeply to read", fix="flatten the structure", source=source
        ) from None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(
            "<yaml>",
            f"YAML tag not allowed: {(exc.problem or '').strip()}",
            fix="remove the tag (e.g. !!python/...): a sweep config is plain YAML - mappings, lists, numbers and text",
            line=mark.line + 1 if mark else None,
            source=source,
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = (exc.problem or exc.context or "malformed YAML").strip()
        raise ConfigError(
            "<yaml>",
            f"cannot parse YAML: {problem}",
            fix="check indentation, colons and brackets around that line",
            line=line,
            source=source,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            "<yaml>", f"cannot parse YAML: {exc}", fix="check the file is valid YAML", source=source
        ) from None
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> tuple[Any, LineMap]:
    """Read and parse a YAML file; a missing or unreadable file is a ConfigError."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(
            "<file>",
            f"config file {str(p)!r} does not exist",
            fix="check the path; examples live in examples/",
        )
    if p.is_dir():
        raise ConfigError("<file>", f"{str(p)!r} is a directory, not a YAML file", fix="pass the .yaml file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("<file>", f"cannot read {str(p)!r}: {exc}", fix="pass a readable UTF-8 YAML file") from None
    return parse_yaml(text, source=str(p))
