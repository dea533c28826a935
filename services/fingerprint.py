"""What a result depends on in code: one fingerprint for the run key, the kernel key, Ray and the signal store.

``code_fingerprint(fn)`` hashes everything a compiled (or plain) function
computes with: its bytecode and constants, the global values it reads
(numbers, strings, arrays - numba freezes those into the machine code), its
closure and defaults, the helpers it calls (followed through module
attributes too, ``helpers.scale``), and the source of every module those
functions live in.  Numpy, numba, llvmlite and the standard library are not
followed (their versions are in ``engine_fingerprint``).

``engine_fingerprint()`` hashes the engine's own files (every ``.py`` of
services/, containers/, sweep/ and the pattern YAML) with the Python, numpy
and numba versions: the Python code that turns a kernel's output into
metrics, tables and statistics.

Numba's own disk cache keys a function by its file's time stamp and
bytecode, so a helper edited in another module leaves its callers' cached
machine code stale (numba issue #6845: the caller keeps the old helper).
``seal`` gives a dispatcher - and, when it is first compiled or loaded,
every dispatcher it reaches - a cache whose index key includes
``code_fingerprint``: an edit anywhere a function reaches compiles it again.

Example:
    >>> from numba import njit
    >>> @njit
    ... def half(x):
    ...     return 0.5 * x
    >>> @njit
    ... def more(x):
    ...     return 0.7 * x
    >>> code_fingerprint(half) == code_fingerprint(half), code_fingerprint(half) == code_fingerprint(more)
    (True, False)
"""

from __future__ import annotations

import builtins
import hashlib
import platform
import sys
import sysconfig
import types
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENGINE_PACKAGES = ("services", "containers", "sweep", "patterns")
_NOT_FOLLOWED = frozenset({"numpy", "numba", "llvmlite", "builtins"})
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) for k in ("stdlib", "platstdlib") if (p := sysconfig.get_paths().get(k))
)
_SHALLOW: dict[int, tuple[object, str, tuple]] = {}  # id(function) -> (function, own token, functions it reaches)
_DEEP: dict[int, tuple[object, str]] = {}


def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def _is_dispatcher(obj) -> bool:
    return hasattr(obj, "py_func") and hasattr(obj, "targetoptions")


def _python(obj):
    return obj.py_func if _is_dispatcher(obj) else obj


@lru_cache(maxsize=1024)
def _followed_module(name: str) -> bool:
    """Is code in module ``name`` followed (the engine's, the user's, a package's) or not (numpy, numba, stdlib)?"""
    top = name.split(".", 1)[0]
    if not top or top in _NOT_FOLLOWED:
        return False
    mod = sys.modules.get(top)
    if mod is None:  # code made outside any imported module (exec, a notebook cell): the user's
        return True
    path = getattr(mod, "__file__", None)
    if path is None:  # a namespace package, a generated kernel module, or a compiled-in module
        return top in ENGINE_PACKAGES or top.startswith("sweep_") or top == "__main__"
    path = str(Path(path).resolve())
    return "site-packages" in path or not any(path.startswith(d) for d in _LIBRARY_DIRS)


@lru_cache(maxsize=512)
def _file_token(path: str, stamp: tuple) -> str:
    try:
        return _digest(Path(path).read_bytes())
    except OSError:
        return "?"


def _module_source(name: str) -> str:
    mod = sys.modules.get(name)
    path = getattr(mod, "__file__", None)
    if not path:
        return ""
    try:
        st = Path(path).stat()
    except OSError:
        return "?"
    return _file_token(path, (st.st_mtime_ns, st.st_size))


def _is_function(obj) -> bool:
    obj = _python(obj)
    return isinstance(obj, types.FunctionType) and _followed_module(getattr(obj, "__module__", "") or "")


def _value(obj, reached: list, depth: int = 0) -> str:
    """A stable token of a value a function reads; functions it names go to ``reached`` instead."""
    if depth > 8:
        return "..."
    if _is_function(obj):
        reached.append(_python(obj))
        return f"fn:{_python(obj).__module__}.{_python(obj).__qualname__}"
    if isinstance(obj, (bool, int, float, complex, str, bytes, type(None))):
        return f"{type(obj).__name__}:{obj!r}"
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return f"array:{a.dtype.str}:{a.shape}:{_digest(a.view(np.uint8).reshape(-1).tobytes())}"
    if isinstance(obj, np.generic):
        return f"{type(obj).__name__}:{obj!r}"
    if isinstance(obj, (tuple, list, frozenset, set)):
        items = [_value(v, reached, depth + 1) for v in obj]
        return f"{type(obj).__name__}({','.join(sorted(items) if isinstance(obj, (set, frozenset)) else items)})"
    if isinstance(obj, dict):
        items = sorted(f"{k!r}={_value(v, reached, depth + 1)}" for k, v in obj.items())
        return "dict(" + ",".join(items) + ")"
    if isinstance(obj, types.ModuleType):
        return f"module:{obj.__name__}"
    if isinstance(obj, type):
        return f"class:{obj.__module__}.{obj.__qualname__}"  # its module's source is hashed with the function
    try:
        text = repr(obj)
    except Exception:  # a repr that fails says nothing stable
        text = " at 0x"
    return f"{type(obj).__module__}.{type(obj).__qualname__}" + ("" if " at 0x" in text else f":{text}")


def _code_tokens(code: types.CodeType, out: list[str], names: set[str], reached: list) -> None:
    out.append(code.co_code.hex())
    names.update(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _code_tokens(c, out, names, reached)
        else:
            out.append(_value(c, reached))


def _shallow(fn) -> tuple[str, tuple]:
    """The function's own token (code, constants, globals, closure, defaults, module source) and what it calls."""
    key = id(fn)
    hit = _SHALLOW.get(key)
    if hit is not None and hit[0] is fn:
        return hit[1], hit[2]
    py = _python(fn)
    reached: list = []
    parts = [f"{py.__module__}.{py.__qualname__}", _module_source(py.__module__)]
    names: set[str] = set()
    _code_tokens(py.__code__, parts, names, reached)
    glb = getattr(py, "__globals__", {})
    modules = []
    for name in sorted(names):
        if name in glb:
            v = glb[name]
            parts.append(f"{name}={_value(v, reached)}")
            if isinstance(v, types.ModuleType) and _followed_module(v.__name__):
                modules.append(v)
        elif hasattr(builtins, name):
            parts.append(f"{name}=builtin")
    for mod in modules:  # helpers reached through a module attribute: mod.helper
        parts.append(_module_source(mod.__name__))
        for name in sorted(names):
            if hasattr(mod, name):
                parts.append(f"{mod.__name__}.{name}={_value(getattr(mod, name), reached)}")
    for cell in py.__closure__ or ():
        try:
            parts.append(_value(cell.cell_contents, reached))
        except ValueError:  # an empty cell
            parts.append("<empty>")
    parts.append(_value(py.__defaults__, reached))
    parts.append(_value(py.__kwdefaults__, reached))
    if _is_dispatcher(fn):
        parts.append(repr(sorted((k, repr(v)) for k, v in fn.targetoptions.items())))
    token = _digest(*(p.encode() for p in parts))
    _SHALLOW[key] = (fn, token, tuple(reached))
    return token, tuple(reached)


def reachable(fn) -> list:
    """``fn`` and every followed function it reaches, each once (Python functions)."""
    seen: dict[int, object] = {}
    stack = [_python(fn)]
    while stack:
        f = stack.pop()
        if id(f) in seen:
            continue
        seen[id(f)] = f
        stack.extend(_shallow(f)[1])
    return list(seen.values())


def code_fingerprint(fn) -> str:
    """Hash of everything ``fn`` computes with: its code, constants, globals and every helper it reaches."""
    py = _python(fn)
    hit = _DEEP.get(id(py))
    if hit is not None and hit[0] is py:
        return hit[1]
    tokens = sorted(_shallow(f)[0] for f in reachable(py))
    fp = _digest(f"{py.__module__}.{py.__qualname__}".encode(), *(t.encode() for t in tokens))
    _DEEP[id(py)] = (py, fp)
    return fp


def combine(*parts: str) -> str:
    """One fingerprint of several (order matters)."""
    return _digest(*(p.encode() for p in parts))


@lru_cache(maxsize=1)
def engine_fingerprint() -> str:
    """Hash of the engine's files (services/, containers/, sweep/, patterns/) and of Python, numpy and numba."""
    import numba

    parts = [f"python {platform.python_version()} numpy {np.__version__} numba {numba.__version__}".encode()]
    for pkg in ENGINE_PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*")):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                parts.append(str(path.relative_to(ROOT)).encode())
                parts.append(path.read_bytes())
    return _digest(*parts)


# ------------------------------------------------------------------ numba's disk cache, keyed by the fingerprint


def _fingerprint_cache_class():
    from numba.core.caching import FunctionCache

    class FingerprintCache(FunctionCache):
        """numba's per-function disk cache with ``code_fingerprint`` in every index key."""

        def _index_key(self, sig, codegen):
            for f in reachable(self._py_func):  # callees compile after this lookup: seal them first
                _seal_one(f)
            return (*super()._index_key(sig, codegen), code_fingerprint(self._py_func))

    return FingerprintCache


_CACHE_CLASS: list = []


def _seal_one(fn) -> None:
    disp = getattr(sys.modules.get(getattr(fn, "__module__", "") or ""), getattr(fn, "__name__", ""), None)
    if disp is None or not _is_dispatcher(disp) or disp.py_func is not fn:
        return
    seal(disp)


def seal(dispatcher) -> None:
    """Key ``dispatcher``'s numba disk cache by its code fingerprint (no-op when it does not cache)."""
    if not _is_dispatcher(dispatcher):
        return
    try:
        from numba.core.caching import FunctionCache

        cache = dispatcher._cache
        if not isinstance(cache, FunctionCache):
            return  # caching is off (cache=False): nothing stale can be loaded
        if not _CACHE_CLASS:
            _CACHE_CLASS.append(_fingerprint_cache_class())
        if type(cache) is not _CACHE_CLASS[0]:
            dispatcher._cache = _CACHE_CLASS[0](dispatcher.py_func)
    except (ImportError, AttributeError, TypeError):  # another numba layout: never load a possibly stale entry
        from numba.core.caching import NullCache

        dispatcher._cache = NullCache()


_SEALED_MODULES: set[str] = set()


def seal_modules(prefixes=ENGINE_PACKAGES) -> None:
    """Seal every caching dispatcher defined in the loaded modules under ``prefixes`` (each module once)."""
    for name, mod in list(sys.modules.items()):
        if name in _SEALED_MODULES or name.split(".", 1)[0] not in prefixes or mod is None:
            continue
        _SEALED_MODULES.add(name)
        for value in list(vars(mod).values()):
            if _is_dispatcher(value) and getattr(value.py_func, "__module__", None) == name:
                seal(value)
