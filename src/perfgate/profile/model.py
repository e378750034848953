"""A parsed pprof profile: one sample type's cost per function, like `go tool pprof -top`, and its stacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from perfgate.profile.aggregate import NodeStacks
from perfgate.profile.units import time_unit_ns


@dataclass(frozen=True)
class FunctionCost:
    """One function's cost, in the profile's default sample unit (ns for Go CPU profiles).

    flat: samples whose innermost frame is this function. cum: samples with this function
    anywhere on the stack, counted once per sample however often it recurses.
    """

    flat: int
    cum: int


@dataclass(frozen=True)
class Profile:
    """A parsed pprof profile, aggregated per function like `go tool pprof -top`.

    functions maps pprof's node names (the function name; "[binary]" or "<unknown>" for
    frames without one) to their cost. stacks holds the folded call stacks, root first,
    with the summed sample value of each, for flame graphs. total is the sum of |value|
    of the default sample type over all samples: the denominator of pprof's percentages.
    """

    name: str
    sample_types: tuple[tuple[str, str], ...]
    default_sample_index: int
    period: int
    period_type: tuple[str, str]
    time_nanos: int
    duration_ns: int
    total: int
    unit: str
    sample_count: int
    functions: Mapping[str, FunctionCost] = field(repr=False)
    _stacks: NodeStacks = field(repr=False, compare=False)
    _names: tuple[str, ...] = field(repr=False, compare=False)
    value_sum: int = 0  # the signed sum of the values before any scaling: what pprof's -normalize divides
    files: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)  # function -> source file

    @cached_property
    def stacks(self) -> Mapping[tuple[str, ...], int]:
        """Folded stacks: function names from the root to the leaf -> summed sample value."""
        return MappingProxyType(self._stacks.named(self._names))

    @property
    def sample_type(self) -> str:
        return self.sample_types[self.default_sample_index][0]

    @property
    def total_ns(self) -> int | None:
        """The total as nanoseconds when the unit is a time unit (CPU profiles), else None."""
        factor = time_unit_ns(self.unit)
        return None if factor is None else round(self.total * factor)

    def cost(self, function: str) -> FunctionCost:
        return self.functions.get(function, NO_COST)


NO_COST = FunctionCost(0, 0)
