"""Plugins with mistakes the registry and config loader must name. Imported by tests only."""

from numba import njit

from services import Int, classifier, strategy


@strategy(params=[Int("n", 5, low=1)], features=["sma(close,{n})"])
@njit(cache=True, nogil=True)
def raises_strategy(f, p, regime):
    """Raises when called."""
    raise ValueError("boom")


@classifier(params=[], features=["close"], regimes=("a", "b"))
@njit(cache=True, nogil=True)
def float_classifier(f, p):
    """Returns a float instead of a regime index."""
    return 0.5


@strategy(params=[Int("n", 5, low=1)], features=["nosuch(close,{n})"])
@njit(cache=True, nogil=True)
def unknown_feature_strategy(f, p, regime):
    """Declares a feature of an indicator that does not exist."""
    return 0.0


@strategy(params=[], features=["close"])
@njit(cache=True, nogil=True)
def out_of_range_strategy(f, p, regime):
    """Returns a signal of 2."""
    return 2.0


def not_compiled(f, p, regime):
    return 0.0
