"""Segment definition language and the evaluator shared by replay and the worker.

The public surface is small on purpose: load definitions, build an engine, feed it
events. Everything else is an implementation detail of the modules below.
"""
from rules.language.loader import DefinitionError, load_definitions
from rules.evaluate.engine import Engine
from rules.evaluate.events import BadEvent, Event, parse_event
from rules.evaluate.changes import Change

__all__ = [
    "BadEvent",
    "Change",
    "DefinitionError",
    "Engine",
    "Event",
    "load_definitions",
    "parse_event",
]
