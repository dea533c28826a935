"""The property-testing kit: check services and indicators, yours or built-in.

``check`` / ``assert_properties`` run the properties (deterministic, inputs
not mutated, bounds, no look-ahead, streaming equivalence, chunking, order
independence, reference, warm-up) with hypothesis; ``bars`` and
``param_values`` are its data strategies; ``verify_service`` is the smoke run
every config does at load time.  The kit drives the feature hub, so it lives
above ``containers/``; its pure core (streaming equivalence on arrays) is
``services.causality``.

Use in your own tests::

    from sweep.kit import assert_properties
    def test_fade():
        assert_properties("mymodule:fade")
"""

from .verify import verify_service

__all__ = ["CHECKS", "PropertyFailure", "assert_properties", "bars", "check", "find", "param_values", "verify_service"]


def __getattr__(name: str):
    # the properties import hypothesis (a tenth of a second): only `sweep check` and tests need them
    if name in __all__:
        from . import properties

        return getattr(properties, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
