"""Parse a pprof profile (gzipped or raw protobuf) once into a Profile, agreeing with `go tool pprof`.

The figures match `go tool pprof -top -nodefraction=0` (google/pprof's internal/graph and internal/report):
functions granularity, inlined frames expanded into their own nodes, cum counted once per sample however
often a function recurs, flat charged to the innermost frame, zero-weight samples skipped, drop_frames
applied, and the total is the sum of |value| over all samples. tests/e2e/test_pprof_agreement.py holds the
parser to that on real Go profiles and on generated ones.
"""

from __future__ import annotations

import gc
import re
import zlib
from collections.abc import Iterable
from operator import attrgetter
from pathlib import Path
from types import MappingProxyType

from google.protobuf.message import DecodeError

from perfgate.errors import ProfileError
from perfgate.files import FileRefused, read_capped
from perfgate.profile import profile_pb2
from perfgate.profile.aggregate import Location, StackAggregator, UnreadableProfile
from perfgate.profile.model import FunctionCost, Profile
from perfgate.profile.names import binary_node_name, go_regex, pprof_function_name, simplify_function_name

# Profiles that decompress to more than this are refused before protobuf decoding. A real
# CPU profile is well under 50 MiB even for a 30 s profile of a many-core service. The bound
# is also the memory bound: protobuf's C decoder spends up to ~25 bytes of memory per byte of
# a crafted profile made of empty entries (measured), so 128 MiB caps that at ~3 GiB.
MAX_PROFILE_BYTES = 128 * 1024 * 1024


def parse_profile(source: Path | str | bytes, *, name: str | None = None, sample_type: str | None = None,
                  ignore: re.Pattern[str] | None = None, hide: re.Pattern[str] | None = None,
                  scale: float | None = None) -> Profile:
    """Parse a pprof profile (gzipped or raw protobuf) from a file or from bytes.

    sample_type picks the value to aggregate by its name (pprof's -sample_index=NAME, e.g.
    "alloc_objects"); by default the profile's default sample type. ignore drops every sample
    with a frame whose function name the regex finds (pprof's -ignore), from the total too; hide
    removes the frames whose name it finds from every stack, and a sample left without frames
    (pprof's -hide: a contention profile's leaf becomes its call site instead of sync.(*Mutex).Lock).
    scale: multiply each sample's value by it and round, as pprof's -normalize does (Profile.ScaleN:
    math.Round of float64 value * ratio, per sample, before anything is added up).
    Raises ProfileError naming the file (or `name`) and the problem for anything that is not
    a usable profile: empty, not gzip/protobuf, truncated, too large, inconsistent tables, or
    no such sample type.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        label = name or "<bytes>"
        data = bytes(source)
    else:
        path = Path(source)
        label = name or str(path)
        data = _read_file(path, label)
    try:
        return parse_bytes(data, label, sample_type=sample_type, ignore=ignore, hide=hide, scale=scale)
    except UnreadableProfile as bad:
        raise ProfileError(f"cannot read CPU profile {label}: {bad}") from None


def _read_file(path: Path, label: str) -> bytes:
    """At most MAX_PROFILE_BYTES, within a deadline: a pipe (`<(curl ...)`) works, /dev/zero or a stuck FIFO ends."""
    try:
        return read_capped(path, MAX_PROFILE_BYTES, regular_only=False)
    except FileNotFoundError:
        raise ProfileError(f"cannot read CPU profile {label}: No such file or directory") from None
    except FileRefused as error:
        raise ProfileError(f"cannot read CPU profile {label}: it {error}") from None


def parse_bytes(data: bytes, name: str, *, sample_type: str | None = None,
                 ignore: re.Pattern[str] | None = None, hide: re.Pattern[str] | None = None,
                 scale: float | None = None) -> Profile:
    raw = _decompress(data)
    message = profile_pb2.Profile()
    try:
        message.ParseFromString(raw)
    except (DecodeError, ValueError, RecursionError) as error:
        raise UnreadableProfile(f"not a pprof profile: the protobuf does not decode ({error})") from None
    except MemoryError:
        raise UnreadableProfile("not enough memory to decode the profile") from None
    del raw
    # Aggregation allocates a tuple per sample and keeps many: the cyclic GC would rescan that
    # growing heap again and again (a large part of the time on big profiles). Nothing built
    # here forms reference cycles, so pausing it is safe.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _ProfileBuilder(message, name, sample_type=sample_type, ignore=ignore, hide=hide, scale=scale).build()
    finally:
        if gc_was_enabled:
            gc.enable()


def mib(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MiB"


def _decompress(data: bytes) -> bytes:
    if not data:
        raise UnreadableProfile("the file is empty")
    if data[:2] != b"\x1f\x8b":
        if len(data) > MAX_PROFILE_BYTES:
            raise UnreadableProfile(f"larger than the {mib(MAX_PROFILE_BYTES)} limit")
        return data
    out: list[bytes] = []
    size = 0
    pending = data
    while True:  # one iteration per gzip member; Go's reader accepts several, so do we
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while not inflater.eof:
            try:
                chunk = inflater.decompress(pending, MAX_PROFILE_BYTES + 1 - size)
            except zlib.error as error:
                raise UnreadableProfile(f"corrupt gzip data ({error})") from None
            size += len(chunk)
            if size > MAX_PROFILE_BYTES:
                raise UnreadableProfile(f"decompresses to more than the {mib(MAX_PROFILE_BYTES)} limit")
            out.append(chunk)
            pending = inflater.unconsumed_tail
            if not inflater.eof and not pending:
                raise UnreadableProfile("truncated gzip data (the stream ends before its end marker)")
        pending = inflater.unused_data
        if not pending:
            return b"".join(out)
        if pending[:2] != b"\x1f\x8b":
            raise UnreadableProfile(f"{len(pending)} bytes of trailing garbage after the gzip stream")


class _Strings:
    """Bounds-checked, lazily decoded view of the string table (names are decoded on use only)."""

    def __init__(self, table: Iterable[bytes]) -> None:
        self._table = table
        self._size = len(table)  # type: ignore[arg-type]
        self._decoded: dict[int, str] = {}
        if self._size == 0:
            raise UnreadableProfile("the string table is empty (entry 0 must be the empty string)")
        if table[0] != b"":  # type: ignore[index]
            raise UnreadableProfile("string_table[0] is not the empty string")

    def get(self, index: int, what: str) -> str:
        text = self._decoded.get(index)
        if text is None:
            if index < 0 or index >= self._size:
                raise UnreadableProfile(f"{what} refers to string {index}, but the string table has "
                                  f"{self._size} entries")
            text = self._table[index].decode("utf-8", "replace")  # type: ignore[index]
            self._decoded[index] = text
        return text

    def find(self, text: bytes) -> int | None:
        for index, entry in enumerate(self._table):
            if entry == text:
                return index
        return None


class _ProfileBuilder:
    """Validates the decoded message and aggregates it per function, like pprof's newGraph."""

    def __init__(self, message: profile_pb2.Profile, name: str, *, sample_type: str | None = None,
                 ignore: re.Pattern[str] | None = None, hide: re.Pattern[str] | None = None,
                 scale: float | None = None) -> None:
        self.message = message
        self.name = name
        self.sample_type = sample_type
        self.ignore = ignore
        self.hide = hide
        self.scale = scale
        self.strings = _Strings(message.string_table)
        self.node_ids: dict[str, int] = {}
        self.node_names: list[str] = []
        self.files: dict[str, str] = {}  # function name -> the source file its first function entry names

    def build(self) -> Profile:
        message = self.message
        sample_types = tuple((self.strings.get(value_type.type, "a sample type"),
                              self.strings.get(value_type.unit, "a sample type"))
                             for value_type in message.sample_type)
        if not sample_types:
            raise UnreadableProfile("the profile has no sample types")
        index = self._default_sample_index(sample_types)
        period_type = ("", "")
        if message.HasField("period_type"):
            period_type = (self.strings.get(message.period_type.type, "period_type"),
                           self.strings.get(message.period_type.unit, "period_type"))
        for comment in message.comment:
            self.strings.get(comment, "a comment")
        locations = self._locations(self._mapping_files(), self._function_names())
        pruning = self._drop_frames_plan(locations)  # trims `locations` first: -ignore sees pruned frames
        ignored = self._ignored_locations(locations)  # before -hide, as pprof's FilterSamplesByName
        aggregator = StackAggregator(locations, *pruning, ignored=ignored, hidden=self._hide_frames(locations))
        base_total = aggregator.consume(message.sample, len(sample_types), index, self._diff_base_check(),
                                        self.scale)
        total, sample_count = aggregator.totals()
        if base_total > 0:  # pprof's computeTotal: with -diff_base samples, percentages are of the base
            total = base_total
        stacks = aggregator.node_stacks()
        flat, cum = stacks.flat_and_cum()
        names = self.node_names
        functions = {names[node]: FunctionCost(flat.get(node, 0), cum.get(node, 0))
                     for node in cum.keys() | flat.keys() if flat.get(node, 0) or cum.get(node, 0)}
        return Profile(
            name=self.name, sample_types=sample_types, default_sample_index=index, period=message.period,
            period_type=period_type, time_nanos=message.time_nanos, duration_ns=message.duration_nanos,
            total=total, unit=sample_types[index][1], sample_count=sample_count,
            functions=MappingProxyType(functions), value_sum=aggregator.value_sum, _stacks=stacks,
            _names=tuple(names), files=MappingProxyType({n: f for n, f in self.files.items() if n in functions}))

    def _default_sample_index(self, sample_types: tuple[tuple[str, str], ...]) -> int:
        if self.sample_type is not None:
            for index, (sample_type, _) in enumerate(sample_types):
                if sample_type == self.sample_type:
                    return index
            raise UnreadableProfile(f"the profile has no sample type {self.sample_type!r} "
                              f"(it has {', '.join(name for name, _ in sample_types)})")
        wanted = self.strings.get(self.message.default_sample_type, "default_sample_type")
        if wanted:
            for index, (sample_type, _) in enumerate(sample_types):
                if sample_type == wanted:
                    return index
        return len(sample_types) - 1

    def _mapping_files(self) -> dict[int, str]:
        files: dict[int, str] = {}
        for mapping in self.message.mapping:
            if mapping.id == 0:
                raise UnreadableProfile("a mapping has the reserved id 0")
            if mapping.id in files:
                raise UnreadableProfile(f"two mappings have id {mapping.id}")
            files[mapping.id] = self.strings.get(mapping.filename, f"mapping {mapping.id}")
            self.strings.get(mapping.build_id, f"mapping {mapping.id}")
        return files

    def _function_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for function in self.message.function:
            if function.id == 0:
                raise UnreadableProfile("a function has the reserved id 0")
            if function.id in names:
                raise UnreadableProfile(f"two functions have id {function.id}")
            what = f"function {function.id}"
            name = names[function.id] = pprof_function_name(self.strings.get(function.name, what),
                                                            self.strings.get(function.system_name, what))
            self.files.setdefault(name, self.strings.get(function.filename, what))
        return names

    def _node(self, name: str) -> int:
        node = self.node_ids.get(name)
        if node is None:
            node = self.node_ids[name] = len(self.node_names)
            self.node_names.append(name)
        return node

    def _locations(self, mapping_files: dict[int, str],
                   function_names: dict[int, str]) -> dict[int, Location]:
        locations: dict[int, Location] = {}
        # Locations differ by address; many share their frames (same functions, same binary).
        by_frames: dict[tuple[int, tuple[int, ...]], Location] = {}
        function_id = attrgetter("function_id")
        for location in self.message.location:
            location_id = location.id
            if location_id == 0:
                raise UnreadableProfile("a location has the reserved id 0")
            if location_id in locations:
                raise UnreadableProfile(f"two locations have id {location_id}")
            frames = (location.mapping_id, tuple(map(function_id, location.line)))
            known = by_frames.get(frames)
            if known is None:
                known = by_frames[frames] = self._new_location(location_id, *frames, mapping_files, function_names)
            locations[location_id] = known
        return locations

    def _new_location(self, location_id: int, mapping_id: int, function_ids: tuple[int, ...],
                      mapping_files: dict[int, str], function_names: dict[int, str]) -> Location:
        names = []
        for function_id in function_ids:
            function_name = function_names.get(function_id)
            if function_name is None:
                raise UnreadableProfile(f"location {location_id} refers to function {function_id}, "
                                  "which is not in the function table")
            names.append(function_name)
        # pprof tolerates a mapping id that points nowhere: the frame just has no binary.
        return self._location(tuple(names), binary_node_name(mapping_files.get(mapping_id, "")))

    def _location(self, function_names: tuple[str, ...], binary_name: str) -> Location:
        # Nameless frames become one node per binary, as in pprof's NodeInfo.PrintableName.
        inner_first = [self._node(name or binary_name) for name in function_names]
        inner_first = inner_first or [self._node(binary_name)]
        return Location(tuple(reversed(inner_first)), function_names, binary_name)

    def _hide_frames(self, locations: dict[int, Location]) -> frozenset[int]:
        """pprof's -hide: drop the frames the regex finds from each location (rewriting `locations`);
        returns the locations left without frames, which samples then skip."""
        if self.hide is None:
            return frozenset()
        search = self.hide.search
        rewritten: dict[int, Location | None] = {}
        hidden = set()
        for location_id, location in list(locations.items()):
            key = id(location)
            if key not in rewritten:
                kept = tuple(name for name in location.function_names if not (name and search(name)))
                if len(kept) == len(location.function_names):
                    rewritten[key] = location
                else:
                    rewritten[key] = self._location(kept, location.binary_name) if kept else None
            new = rewritten[key]
            if new is None:
                hidden.add(location_id)
            else:
                locations[location_id] = new
        return frozenset(hidden)

    def _ignored_locations(self, locations: dict[int, Location]) -> frozenset[int]:
        """The locations with a frame the ignore regex finds (each distinct frame list tested once)."""
        if self.ignore is None:
            return frozenset()
        search = self.ignore.search
        verdicts: dict[int, bool] = {}
        ignored = set()
        for location_id, location in locations.items():
            matched = verdicts.get(id(location))
            if matched is None:
                matched = verdicts[id(location)] = any(map(search, location.function_names))
            if matched:
                ignored.add(location_id)
        return frozenset(ignored)

    def _drop_frames_plan(self, locations: dict[int, Location]) -> tuple[set[int], set[int]]:
        """pprof's Profile.Prune, per location: which to drop whole, which to cut below (trimmed here).

        Applies the profile's drop_frames/keep_frames regexes (Go never sets them in CPU
        profiles; other producers may). Returns (drop whole, drop below) location id sets.
        """
        whole: set[int] = set()
        below: set[int] = set()
        drop_rx = go_regex(self.strings.get(self.message.drop_frames, "drop_frames"))
        keep_rx = go_regex(self.strings.get(self.message.keep_frames, "keep_frames"))
        if drop_rx is None:
            return whole, below
        for location_id, location in list(locations.items()):
            names = location.function_names
            for index in range(len(names) - 1, -1, -1):  # outermost frame first
                simple = simplify_function_name(names[index])
                if names[index] and drop_rx.fullmatch(simple) and not (keep_rx and keep_rx.fullmatch(simple)):
                    break
            else:
                continue
            below.add(location_id)
            if index == len(names) - 1:
                whole.add(location_id)
            else:  # keep only the frames this one was inlined into
                locations[location_id] = self._location(names[index + 1:], location.binary_name)
        return whole, below

    def _diff_base_check(self):
        """A test for pprof -diff_base samples (label pprof::base=true), or None when the profile
        has none. Labels are otherwise not read: perfgate does not use them, and reading them per
        sample is a tenth of the parse time."""
        base_key = self.strings.find(b"pprof::base")
        base_true = self.strings.find(b"true")
        if base_key is None or base_true is None:
            return None

        def is_diff_base(sample: profile_pb2.Sample) -> bool:
            return any(label.key == base_key and label.str == base_true for label in sample.label)

        return is_diff_base
