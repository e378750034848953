"""Samples to per-function flat and cum and to folded stacks, as pprof's graph building (newGraph) does."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import chain, compress
from operator import itemgetter, not_
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perfgate.profile import profile_pb2


class UnreadableProfile(Exception):
    """A problem with the profile's content; parse_profile adds the file name."""


@dataclass
class Location:
    """A location's frames as graph nodes, outermost first (pprof's node order)."""

    nodes: tuple[int, ...]
    function_names: tuple[str, ...]  # innermost first, as stored; drop_frames matches these
    binary_name: str  # the node name of frames without a function name


class StackAggregator:
    """Aggregates samples (location ids, leaf first) into flat and cum per node, like pprof's newGraph.

    The per-sample work is kept to a few C-implemented calls, because per-frame Python bytecode
    would be the whole cost of a large profile. Each location is replaced by a representative:
    its node when it has one frame (the common case), or -id when it holds inlined frames (a
    "marker"). Samples are grouped by weight (CPU profiles have few distinct weights: multiples
    of the period) so Counter, a C loop, merges equal stacks; flat and cum are then counted per
    distinct node stack (see NodeStacks.flat_and_cum).
    """

    def __init__(self, locations: dict[int, Location], prune_whole: set[int], prune_below: set[int], *,
                 ignored: frozenset[int] = frozenset(), hidden: frozenset[int] = frozenset()) -> None:
        self.locations = {lid: location for lid, location in locations.items() if lid not in hidden}
        self.ignored = ignored
        self.hidden = hidden
        self.prune_whole, self.prune_below = prune_whole, prune_below
        # Locations with the same frames (another address in the same inlined code) share a marker.
        markers: dict[tuple[int, ...], int] = {}
        self.representative = {location_id: location.nodes[0] if len(location.nodes) == 1
                               else markers.setdefault(location.nodes, -location_id)
                               for location_id, location in self.locations.items()}
        self.by_weight: dict[int, list[tuple[int, ...]]] = defaultdict(list)
        self.value_sum = 0

    def consume(self, samples: Iterable[profile_pb2.Sample], type_count: int, index: int,
                is_diff_base, scale: float | None = None) -> int:
        """Group every sample with a non-zero value by weight; return the |value| total of the
        pprof -diff_base samples (pprof::base=true label), 0 when there are none."""
        represent = self.representative.__getitem__
        by_weight = self.by_weight
        pruning = bool(self.prune_below)
        ignored, hidden = self.ignored, self.hidden
        base_total = value_sum = 0
        for sample in samples:
            values = sample.value
            if len(values) != type_count:
                raise UnreadableProfile(f"a sample has {len(values)} values for {type_count} sample types")
            weight = values[index]
            value_sum += weight
            if scale is not None:
                weight = go_round(weight * scale)
            if is_diff_base is not None and is_diff_base(sample):
                base_total += abs(weight)
            if not weight:
                continue  # pprof skips zero-weight samples entirely
            location_ids = sample.location_id[:]
            if pruning:
                location_ids = self._pruned(location_ids)
            if ignored and not ignored.isdisjoint(location_ids):
                continue
            if hidden:
                location_ids = [location_id for location_id in location_ids if location_id not in hidden]
                if not location_ids:
                    continue  # pprof's -hide drops a sample left without frames
            try:
                by_weight[weight].append(tuple(map(represent, reversed(location_ids))))
            except KeyError as missing:
                raise UnreadableProfile(f"a sample refers to location {missing.args[0]}, "
                                  "which is not in the location table") from None
        self.value_sum = value_sum
        return base_total

    def _pruned(self, stack: list[int]) -> list[int]:
        """pprof's Profile.Prune for one sample: cut at the first dropped frame below user code."""
        found_user = False
        for position in range(len(stack) - 1, -1, -1):
            location_id = stack[position]
            whole, below = location_id in self.prune_whole, location_id in self.prune_below
            if not whole and not below:
                found_user = True
            elif found_user:
                return stack[position + 1:] if whole else stack[position:]
        return stack

    def totals(self) -> tuple[int, int]:
        """pprof's total (sum of |value|, zero-frame samples included) and the sample count."""
        return (sum(abs(weight) * len(stacks) for weight, stacks in self.by_weight.items()),
                sum(len(stacks) for stacks in self.by_weight.values()))

    def node_stacks(self) -> NodeStacks:
        """Distinct representative stacks (root first) grouped by summed weight."""
        groups: dict[int, list[tuple[int, ...]]] = defaultdict(list)
        for weight, keys in self.by_weight.items():
            counts = Counter(keys)
            if len(counts) == len(keys):
                groups[weight].extend(counts)
            else:
                for key, count in counts.items():
                    groups[weight * count].append(key)
        expansions = {rep: (rep,) if rep >= 0 else self.locations[-rep].nodes
                      for rep in set(self.representative.values())}
        # Samples without frames count in the total only; weights may cancel out (diff profiles).
        return NodeStacks({weight: list(filter(None, stacks)) for weight, stacks in groups.items() if weight},
                           expansions)


@dataclass(frozen=True)
class NodeStacks:
    """Distinct stacks of representatives (root first) by weight (a stack may sit in several
    groups), and each representative's nodes, outermost first. A representative is a node, or
    a marker (negative) for a location with inlined frames. Profile keeps this and expands it
    into named stacks only when asked (flame graphs do; the gate does not)."""

    by_weight: Mapping[int, list[tuple[int, ...]]]
    expansions: Mapping[int, tuple[int, ...]]

    def flat_and_cum(self) -> tuple[Counter[int], Counter[int]]:
        """flat: weight of each stack's innermost node; cum: weight once per distinct node of a stack.

        Grouped by weight, the counting runs inside Counter's C loop, not in Python bytecode;
        stacks without markers are node stacks already and are not expanded.
        """
        markers = frozenset(rep for rep in self.expansions if rep < 0)
        expand_each = partial(map, self.expansions.__getitem__)
        flat_by_rep: Counter[int] = Counter()
        cum: Counter[int] = Counter()
        for weight, stacks in self.by_weight.items():
            unmarked = list(map(markers.isdisjoint, stacks))
            node_sets = chain(map(frozenset, compress(stacks, unmarked)),
                              map(frozenset, map(chain.from_iterable,
                                                 map(expand_each, compress(stacks, map(not_, unmarked))))))
            for node, count in Counter(chain.from_iterable(node_sets)).items():
                cum[node] += count * weight
            for rep, count in Counter(map(itemgetter(-1), stacks)).items():
                flat_by_rep[rep] += count * weight
        flat: Counter[int] = Counter()
        for rep, weight in flat_by_rep.items():
            flat[self.expansions[rep][-1]] += weight  # a marker's innermost frame is its last node
        return flat, cum

    def named(self, names: tuple[str, ...]) -> dict[tuple[str, ...], int]:
        name_of = names.__getitem__
        expansions = {rep: tuple(map(name_of, nodes)) for rep, nodes in self.expansions.items()}
        expand_each = partial(map, expansions.__getitem__)
        folded: dict[tuple[str, ...], int] = {}
        for weight, stacks in self.by_weight.items():
            for key in map(tuple, map(chain.from_iterable, map(expand_each, stacks))):
                folded[key] = folded.get(key, 0) + weight
        return {key: weight for key, weight in folded.items() if weight}


def go_round(value: float) -> int:
    """Go's math.Round: to the nearest integer, halves away from zero (Python's round() goes to even)."""
    whole = math.trunc(value)
    return int(whole + math.copysign(1.0, value)) if abs(value - whole) >= 0.5 else int(whole)
