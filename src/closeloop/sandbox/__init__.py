"""The shared kit of the vendor emulators ("sandboxes"): records, knobs, faults, limits, seeding, serving."""

from closeloop.sandbox.kit import Knobs, Refusal, SandboxBase, Stats
from closeloop.sandbox.records import RecordTable, Row, SandboxClock, sequential_ids
from closeloop.sandbox.seed import Deal, Person, Seeder
from closeloop.sandbox.target import ConformanceTarget

__all__ = [
    "ConformanceTarget",
    "Deal",
    "Knobs",
    "Person",
    "RecordTable",
    "Refusal",
    "Row",
    "SandboxBase",
    "SandboxClock",
    "Seeder",
    "Stats",
    "sequential_ids",
]
