"""What a compiled service is, also when numba is switched off (``NUMBA_DISABLE_JIT=1``, for debugging and tests).

With the JIT disabled ``@njit`` returns the plain Python function, which has
no ``py_func``; ``python_of`` gives the Python function either way.
"""

from __future__ import annotations

from numba import config


def jit_disabled() -> bool:
    return bool(config.DISABLE_JIT)


def is_compiled(fn) -> bool:
    """A numba dispatcher - or, with the JIT disabled, any plain function."""
    from numba.core.dispatcher import Dispatcher

    return isinstance(fn, Dispatcher) or (jit_disabled() and callable(fn) and hasattr(fn, "__code__"))


def python_of(fn):
    """The Python function behind a numba dispatcher (the function itself with the JIT disabled)."""
    return getattr(fn, "py_func", fn)
