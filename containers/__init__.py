"""Stateful containers: data, feature hub, portfolio bank, execution, event bus and tracer.

Only the state that must live is kept here; everything else is a pure service.
"""
