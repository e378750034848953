"""CPU profiles: fetch one from net/http/pprof, parse pprof's protobuf once, render `profile top`.

The figures match `go tool pprof -top -nodefraction=0` (REFERENCE.md §2.4, read from
google/pprof's internal/graph and internal/report): functions granularity, inlined frames
expanded into their own nodes, cum counted once per sample however often a function recurs,
flat charged to the innermost frame, zero-weight samples skipped, drop_frames applied, and
the total is the sum of |value| over all samples. tests/e2e/test_pprof_agreement.py holds the
parser to that on real Go profiles and on generated ones.
"""

from __future__ import annotations

import gc
import http.client
import json
import math
import re
import shlex
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from itertools import chain, compress
from operator import attrgetter, itemgetter, not_
from pathlib import Path
from types import MappingProxyType
from urllib.parse import parse_qsl, urlencode, urlsplit

from google.protobuf.message import DecodeError

from perfgate.capture import profile_pb2
from perfgate.errors import ConfigError, ProfileError, ToolError
from perfgate.files import FileRefused, read_capped
from perfgate.patterns import compile_function_pattern

# Profiles that decompress to more than this are refused before protobuf decoding. A real
# CPU profile is well under 50 MiB even for a 30 s profile of a many-core service. The bound
# is also the memory bound: protobuf's C decoder spends up to ~25 bytes of memory per byte of
# a crafted profile made of empty entries (measured), so 128 MiB caps that at ~3 GiB.
MAX_PROFILE_BYTES = 128 * 1024 * 1024

PROFILE_PATH = "/debug/pprof/profile"
CONNECT_TIMEOUT_S = 5.0
ERROR_BODY_CHARS = 300


# --------------------------------------------------------------------------------------------
# Fetching


class ProfileUnavailable(ToolError):
    """The service did not hand over a profile (CPU by default); `reason` says why, for the report."""

    def __init__(self, reason: str, hint: str | None = None, *, kind: str = "cpu") -> None:
        self.reason = reason
        self.kind = kind
        super().__init__(f"{kind} profile unavailable: {reason}", hint)


def profile_url(pprof_url: str, name: str = "profile") -> str:
    """{pprof_url}/debug/pprof/NAME (the CPU profile by default); a pprof_url that already ends in
    /debug/pprof or /debug/pprof/profile is taken as the service's root."""
    base = pprof_url.rstrip("/")
    for suffix in (PROFILE_PATH, "/debug/pprof"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return f"{base}/debug/pprof/{name}"


def default_fetch_timeout_s(seconds: int) -> float:
    """pprof waits seconds * 1.5; short windows on a busy CI runner get at least 5 s of slack."""
    return seconds + max(seconds / 2, 5.0)


def fetch_cpu_profile(pprof_url: str, seconds: int, *, timeout_s: float | None = None) -> bytes:
    """GET {pprof_url}/debug/pprof/profile?seconds=N and return the body once it parses as a profile.

    Blocks for about `seconds` (the server profiles for that long before it answers). The
    caller must not overlap two requests to one process: Go then answers 500 "cpu profiling
    already in use". Every failure is a ProfileUnavailable whose reason names the URL.
    """
    body = fetch_profile_body(profile_url(pprof_url), seconds, timeout_s=timeout_s)
    try:
        _parse_bytes(body, profile_url(pprof_url))
    except _BadProfile as bad:
        raise ProfileUnavailable(f"{profile_url(pprof_url)} returned a body that is not a CPU profile: {bad}") from None
    return body


def fetch_profile_body(url: str, seconds: int | None, *, timeout_s: float | None = None, kind: str = "cpu",
                       params: Mapping[str, str] | None = None) -> bytes:
    """GET a pprof endpoint (with ?seconds=N when given: net/http/pprof then answers after N seconds) and
    return its body, at most MAX_PROFILE_BYTES. Every failure is a ProfileUnavailable of `kind` naming the URL.

    One deadline bounds the whole request (connect, the wait for the answer, every read): each socket
    operation may wait only for what is left of it, so a server that trickles bytes cannot stretch it.
    """
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1):
        raise ValueError(f"seconds must be a positive integer, got {seconds!r}")
    wait_s = seconds or 0
    limit_s = default_fetch_timeout_s(wait_s) if timeout_s is None else float(timeout_s)
    if limit_s <= wait_s:
        raise ValueError(f"timeout_s ({limit_s}) must be longer than the profile ({wait_s} s)")
    query = {**(params or {}), **({"seconds": str(seconds)} if seconds is not None else {})}

    def unavailable(reason: str) -> ProfileUnavailable:
        return ProfileUnavailable(reason, kind=kind)

    return _Request(url, query, limit_s, wait_s, unavailable).body()


class _Request:
    """One GET with http.client under an overall deadline (requests cannot shorten a read mid-stream)."""

    def __init__(self, url: str, query: Mapping[str, str], limit_s: float, wait_s: int, unavailable) -> None:
        self.url, self.limit_s, self.wait_s, self.unavailable = url, limit_s, wait_s, unavailable
        self.deadline = time.monotonic() + limit_s
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise unavailable(f"{url}: expected an http:// or https:// URL")
        self.target = (parts.path or "/") + "?" + urlencode({**dict(parse_qsl(parts.query)), **query})
        connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        try:
            self.connection = connection(parts.hostname, parts.port, timeout=min(CONNECT_TIMEOUT_S, limit_s))
        except ValueError as error:  # a port that is not a number
            raise unavailable(f"{url}: {error}") from None

    def body(self) -> bytes:
        try:
            self._connect()
            self.connection.request("GET", self.target, headers={"Accept-Encoding": "identity"})
            response = self._within(self.connection.getresponse)
            if response.status != 200:
                raise self.unavailable(f"{self.url} returned {response.status}: {self._error_text(response)}")
            return self._read(response)
        except TimeoutError:
            raise self.unavailable(self._late()) from None
        except (OSError, http.client.HTTPException) as error:
            raise self.unavailable(f"request to {self.url} failed: {_os_reason(error)}") from None
        finally:
            self.connection.close()

    def _connect(self) -> None:
        try:
            self.connection.connect()
            self.sock = self.connection.sock  # kept: http.client drops its own once a closing answer arrives
        except TimeoutError:
            raise self.unavailable(f"cannot connect to {self.url}: no answer within {CONNECT_TIMEOUT_S:.0f} s") \
                from None
        except OSError as error:
            raise self.unavailable(f"cannot connect to {self.url}: {_os_reason(error)}") from None

    def _within(self, operation):
        """Run one blocking socket operation with what is left of the deadline as its timeout."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        return operation()

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := self._within(lambda: response.read1(256 * 1024)):
            size += len(chunk)
            if size > MAX_PROFILE_BYTES:
                raise self.unavailable(f"{self.url} sent more than {_mib(MAX_PROFILE_BYTES)}, too much for a profile")
            chunks.append(chunk)
        return b"".join(chunks)

    def _late(self) -> str:
        asked = f" (asked for {self.wait_s} s of profiling)" if self.wait_s else ""
        return f"{self.url} sent no complete profile within {self.limit_s:.1f} s{asked}"

    def _error_text(self, response: http.client.HTTPResponse) -> str:
        try:
            raw = self._within(lambda: response.read(4096)) or b""
        except (OSError, http.client.HTTPException):
            raw = b""
        text = " ".join(raw.decode("utf-8", "replace").split())
        if len(text) > ERROR_BODY_CHARS:
            text = text[:ERROR_BODY_CHARS] + "…"
        return text or response.reason or "no body"


def _os_reason(error: BaseException) -> str:
    """The short reason ("Connection refused"): the OS error's text, else the exception's."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error) or type(error).__name__
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    return text if len(text) <= ERROR_BODY_CHARS else text[:ERROR_BODY_CHARS] + "…"


# --------------------------------------------------------------------------------------------
# The parsed profile


@dataclass(frozen=True)
class FunctionCost:
    """One function's cost, in the profile's default sample unit (ns for Go CPU profiles).

    flat: samples whose innermost frame is this function. cum: samples with this function
    anywhere on the stack, counted once per sample however often it recurses.
    """

    flat: int
    cum: int


@dataclass(frozen=True)
class CpuProfile:
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
    _stacks: _NodeStacks = field(repr=False, compare=False)
    _names: tuple[str, ...] = field(repr=False, compare=False)
    value_sum: int = 0  # the signed sum of the values before any scaling: what pprof's -normalize divides

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


def time_unit_ns(unit: str) -> float | None:
    """Nanoseconds per `unit` ("nanoseconds", "ms", ...) as pprof reads units, or None."""
    found = _sniff_unit(_TIME_UNITS, unit)
    return None if found is None else found[2]


# --------------------------------------------------------------------------------------------
# Parsing


class _BadProfile(Exception):
    """A problem with the profile's content; parse_profile adds the file name."""


def parse_profile(source: Path | str | bytes, *, name: str | None = None, sample_type: str | None = None,
                  ignore: re.Pattern[str] | None = None, scale: float | None = None) -> CpuProfile:
    """Parse a pprof profile (gzipped or raw protobuf) from a file or from bytes.

    sample_type picks the value to aggregate by its name (pprof's -sample_index=NAME, e.g.
    "alloc_objects"); by default the profile's default sample type. ignore drops every sample
    with a frame whose function name the regex finds (pprof's -ignore), from the total too.
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
        return _parse_bytes(data, label, sample_type=sample_type, ignore=ignore, scale=scale)
    except _BadProfile as bad:
        raise ProfileError(f"cannot read CPU profile {label}: {bad}") from None


def _read_file(path: Path, label: str) -> bytes:
    """At most MAX_PROFILE_BYTES, within a deadline: a pipe (`<(curl ...)`) works, /dev/zero or a stuck FIFO ends."""
    try:
        return read_capped(path, MAX_PROFILE_BYTES, regular_only=False)
    except FileNotFoundError:
        raise ProfileError(f"cannot read CPU profile {label}: No such file or directory") from None
    except FileRefused as error:
        raise ProfileError(f"cannot read CPU profile {label}: it {error}") from None


def _parse_bytes(data: bytes, name: str, *, sample_type: str | None = None,
                 ignore: re.Pattern[str] | None = None, scale: float | None = None) -> CpuProfile:
    raw = _decompress(data)
    message = profile_pb2.Profile()
    try:
        message.ParseFromString(raw)
    except (DecodeError, ValueError, RecursionError) as error:
        raise _BadProfile(f"not a pprof profile: the protobuf does not decode ({error})") from None
    except MemoryError:
        raise _BadProfile("not enough memory to decode the profile") from None
    del raw
    # Aggregation allocates a tuple per sample and keeps many: the cyclic GC would rescan that
    # growing heap again and again (a large part of the time on big profiles). Nothing built
    # here forms reference cycles, so pausing it is safe.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _ProfileBuilder(message, name, sample_type=sample_type, ignore=ignore, scale=scale).build()
    finally:
        if gc_was_enabled:
            gc.enable()


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MiB"


def _decompress(data: bytes) -> bytes:
    if not data:
        raise _BadProfile("the file is empty")
    if data[:2] != b"\x1f\x8b":
        if len(data) > MAX_PROFILE_BYTES:
            raise _BadProfile(f"larger than the {_mib(MAX_PROFILE_BYTES)} limit")
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
                raise _BadProfile(f"corrupt gzip data ({error})") from None
            size += len(chunk)
            if size > MAX_PROFILE_BYTES:
                raise _BadProfile(f"decompresses to more than the {_mib(MAX_PROFILE_BYTES)} limit")
            out.append(chunk)
            pending = inflater.unconsumed_tail
            if not inflater.eof and not pending:
                raise _BadProfile("truncated gzip data (the stream ends before its end marker)")
        pending = inflater.unused_data
        if not pending:
            return b"".join(out)
        if pending[:2] != b"\x1f\x8b":
            raise _BadProfile(f"{len(pending)} bytes of trailing garbage after the gzip stream")


class _Strings:
    """Bounds-checked, lazily decoded view of the string table (names are decoded on use only)."""

    def __init__(self, table: Iterable[bytes]) -> None:
        self._table = table
        self._size = len(table)  # type: ignore[arg-type]
        self._decoded: dict[int, str] = {}
        if self._size == 0:
            raise _BadProfile("the string table is empty (entry 0 must be the empty string)")
        if table[0] != b"":  # type: ignore[index]
            raise _BadProfile("string_table[0] is not the empty string")

    def get(self, index: int, what: str) -> str:
        text = self._decoded.get(index)
        if text is None:
            if index < 0 or index >= self._size:
                raise _BadProfile(f"{what} refers to string {index}, but the string table has "
                                  f"{self._size} entries")
            text = self._table[index].decode("utf-8", "replace")  # type: ignore[index]
            self._decoded[index] = text
        return text

    def find(self, text: bytes) -> int | None:
        for index, entry in enumerate(self._table):
            if entry == text:
                return index
        return None


@dataclass
class _Location:
    """A location's frames as graph nodes, outermost first (pprof's node order)."""

    nodes: tuple[int, ...]
    function_names: tuple[str, ...]  # innermost first, as stored; drop_frames matches these
    binary_name: str  # the node name of frames without a function name


class _ProfileBuilder:
    """Validates the decoded message and aggregates it per function, like pprof's newGraph."""

    def __init__(self, message: profile_pb2.Profile, name: str, *, sample_type: str | None = None,
                 ignore: re.Pattern[str] | None = None, scale: float | None = None) -> None:
        self.message = message
        self.name = name
        self.sample_type = sample_type
        self.ignore = ignore
        self.scale = scale
        self.strings = _Strings(message.string_table)
        self.node_ids: dict[str, int] = {}
        self.node_names: list[str] = []

    def build(self) -> CpuProfile:
        message = self.message
        sample_types = tuple((self.strings.get(value_type.type, "a sample type"),
                              self.strings.get(value_type.unit, "a sample type"))
                             for value_type in message.sample_type)
        if not sample_types:
            raise _BadProfile("the profile has no sample types")
        index = self._default_sample_index(sample_types)
        period_type = ("", "")
        if message.HasField("period_type"):
            period_type = (self.strings.get(message.period_type.type, "period_type"),
                           self.strings.get(message.period_type.unit, "period_type"))
        for comment in message.comment:
            self.strings.get(comment, "a comment")
        locations = self._locations(self._mapping_files(), self._function_names())
        pruning = self._drop_frames_plan(locations)  # trims `locations` first: -ignore sees pruned frames
        aggregator = _StackAggregator(locations, *pruning, ignored=self._ignored_locations(locations))
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
        return CpuProfile(
            name=self.name, sample_types=sample_types, default_sample_index=index, period=message.period,
            period_type=period_type, time_nanos=message.time_nanos, duration_ns=message.duration_nanos,
            total=total, unit=sample_types[index][1], sample_count=sample_count,
            functions=MappingProxyType(functions), value_sum=aggregator.value_sum, _stacks=stacks,
            _names=tuple(names))

    def _default_sample_index(self, sample_types: tuple[tuple[str, str], ...]) -> int:
        if self.sample_type is not None:
            for index, (sample_type, _) in enumerate(sample_types):
                if sample_type == self.sample_type:
                    return index
            raise _BadProfile(f"the profile has no sample type {self.sample_type!r} "
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
                raise _BadProfile("a mapping has the reserved id 0")
            if mapping.id in files:
                raise _BadProfile(f"two mappings have id {mapping.id}")
            files[mapping.id] = self.strings.get(mapping.filename, f"mapping {mapping.id}")
            self.strings.get(mapping.build_id, f"mapping {mapping.id}")
        return files

    def _function_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for function in self.message.function:
            if function.id == 0:
                raise _BadProfile("a function has the reserved id 0")
            if function.id in names:
                raise _BadProfile(f"two functions have id {function.id}")
            what = f"function {function.id}"
            self.strings.get(function.filename, what)
            names[function.id] = pprof_function_name(self.strings.get(function.name, what),
                                                     self.strings.get(function.system_name, what))
        return names

    def _node(self, name: str) -> int:
        node = self.node_ids.get(name)
        if node is None:
            node = self.node_ids[name] = len(self.node_names)
            self.node_names.append(name)
        return node

    def _locations(self, mapping_files: dict[int, str],
                   function_names: dict[int, str]) -> dict[int, _Location]:
        locations: dict[int, _Location] = {}
        # Locations differ by address; many share their frames (same functions, same binary).
        by_frames: dict[tuple[int, tuple[int, ...]], _Location] = {}
        function_id = attrgetter("function_id")
        for location in self.message.location:
            location_id = location.id
            if location_id == 0:
                raise _BadProfile("a location has the reserved id 0")
            if location_id in locations:
                raise _BadProfile(f"two locations have id {location_id}")
            frames = (location.mapping_id, tuple(map(function_id, location.line)))
            known = by_frames.get(frames)
            if known is None:
                known = by_frames[frames] = self._new_location(location_id, *frames, mapping_files, function_names)
            locations[location_id] = known
        return locations

    def _new_location(self, location_id: int, mapping_id: int, function_ids: tuple[int, ...],
                      mapping_files: dict[int, str], function_names: dict[int, str]) -> _Location:
        names = []
        for function_id in function_ids:
            function_name = function_names.get(function_id)
            if function_name is None:
                raise _BadProfile(f"location {location_id} refers to function {function_id}, "
                                  "which is not in the function table")
            names.append(function_name)
        # pprof tolerates a mapping id that points nowhere: the frame just has no binary.
        return self._location(tuple(names), _binary_node_name(mapping_files.get(mapping_id, "")))

    def _location(self, function_names: tuple[str, ...], binary_name: str) -> _Location:
        # Nameless frames become one node per binary, as in pprof's NodeInfo.PrintableName.
        inner_first = [self._node(name or binary_name) for name in function_names]
        inner_first = inner_first or [self._node(binary_name)]
        return _Location(tuple(reversed(inner_first)), function_names, binary_name)

    def _ignored_locations(self, locations: dict[int, _Location]) -> frozenset[int]:
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

    def _drop_frames_plan(self, locations: dict[int, _Location]) -> tuple[set[int], set[int]]:
        """pprof's Profile.Prune, per location: which to drop whole, which to cut below (trimmed here).

        Applies the profile's drop_frames/keep_frames regexes (Go never sets them in CPU
        profiles; other producers may). Returns (drop whole, drop below) location id sets.
        """
        whole: set[int] = set()
        below: set[int] = set()
        drop_rx = _go_regex(self.strings.get(self.message.drop_frames, "drop_frames"))
        keep_rx = _go_regex(self.strings.get(self.message.keep_frames, "keep_frames"))
        if drop_rx is None:
            return whole, below
        for location_id, location in list(locations.items()):
            names = location.function_names
            for index in range(len(names) - 1, -1, -1):  # outermost frame first
                simple = _simplify_function_name(names[index])
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


class _StackAggregator:
    """Aggregates samples (location ids, leaf first) into flat and cum per node, like pprof's newGraph.

    The per-sample work is kept to a few C-implemented calls, because per-frame Python bytecode
    would be the whole cost of a large profile. Each location is replaced by a representative:
    its node when it has one frame (the common case), or -id when it holds inlined frames (a
    "marker"). Samples are grouped by weight (CPU profiles have few distinct weights: multiples
    of the period) so Counter, a C loop, merges equal stacks; flat and cum are then counted per
    distinct node stack (see _NodeStacks.flat_and_cum).
    """

    def __init__(self, locations: dict[int, _Location], prune_whole: set[int], prune_below: set[int], *,
                 ignored: frozenset[int] = frozenset()) -> None:
        self.locations = locations
        self.ignored = ignored
        self.prune_whole, self.prune_below = prune_whole, prune_below
        # Locations with the same frames (another address in the same inlined code) share a marker.
        markers: dict[tuple[int, ...], int] = {}
        self.representative = {location_id: location.nodes[0] if len(location.nodes) == 1
                               else markers.setdefault(location.nodes, -location_id)
                               for location_id, location in locations.items()}
        self.by_weight: dict[int, list[tuple[int, ...]]] = defaultdict(list)
        self.value_sum = 0

    def consume(self, samples: Iterable[profile_pb2.Sample], type_count: int, index: int,
                is_diff_base, scale: float | None = None) -> int:
        """Group every sample with a non-zero value by weight; return the |value| total of the
        pprof -diff_base samples (pprof::base=true label), 0 when there are none."""
        represent = self.representative.__getitem__
        by_weight = self.by_weight
        pruning = bool(self.prune_below)
        ignored = self.ignored
        base_total = value_sum = 0
        for sample in samples:
            values = sample.value
            if len(values) != type_count:
                raise _BadProfile(f"a sample has {len(values)} values for {type_count} sample types")
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
            try:
                by_weight[weight].append(tuple(map(represent, reversed(location_ids))))
            except KeyError as missing:
                raise _BadProfile(f"a sample refers to location {missing.args[0]}, "
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

    def node_stacks(self) -> _NodeStacks:
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
        return _NodeStacks({weight: list(filter(None, stacks)) for weight, stacks in groups.items() if weight},
                           expansions)


@dataclass(frozen=True)
class _NodeStacks:
    """Distinct stacks of representatives (root first) by weight (a stack may sit in several
    groups), and each representative's nodes, outermost first. A representative is a node, or
    a marker (negative) for a location with inlined frames. CpuProfile keeps this and expands it
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
            plain = list(map(markers.isdisjoint, stacks))
            node_sets = chain(map(frozenset, compress(stacks, plain)),
                              map(frozenset, map(chain.from_iterable,
                                                 map(expand_each, compress(stacks, map(not_, plain))))))
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


def pprof_function_name(name: str, system_name: str) -> str:
    """The name pprof reports for a function (its symbolizer's Demangle step, default mode).

    A function whose name differs from its system name keeps it. Otherwise pprof demangles the
    system name; a name that is not mangled but "looks like demangled C++" (has <, >, [, ] or
    ::) loses its (...) and <...> groups. Go's generic instances are caught by that:
    `walkList[go.shape.interface { End() token.Pos }]` becomes `walkList[go.shape.interface
    { End token.Pos }]`. Go writes name == system name, so this applies to every Go function.
    Limitation: real C++/Rust mangled symbols (_Z..., _R..., only in cgo binaries) stay mangled
    here, while pprof demangles them.
    """
    if name and system_name != name:
        return name
    if _looks_like_demangled_cpp(system_name):
        system_name = _remove_matching(_remove_matching(system_name, "(", ")"), "<", ">")
    return system_name


def _looks_like_demangled_cpp(name: str) -> bool:
    if ".<" in name or "])." in name:  # Java "class.<init>", Go "pkg.(*T[...]).M"
        return False
    return any(c in name for c in "<>[]") or "::" in name


def _remove_matching(name: str, start: str, end: str) -> str:
    """Remove every outermost start...end group (pprof's removeMatching); unbalanced: unchanged."""
    nesting = first = 0
    current = 0
    while True:
        found = [i for i in (name.find(start, current), name.find(end, current)) if i != -1]
        if not found:
            return name
        current = min(found)
        if name[current] == start:
            nesting += 1
            if nesting == 1:
                first = current
        else:
            nesting -= 1
            if nesting < 0:
                return name
            if nesting == 0:
                name = name[:first] + name[current + 1:]
                current = first - 1
        current += 1


def _binary_node_name(mapping_file: str) -> str:
    """pprof's name for a frame without a function: [basename of the binary], else <unknown>."""
    if not mapping_file:
        return "<unknown>"
    trimmed = mapping_file.rstrip("/")
    return "[" + (trimmed.rsplit("/", 1)[-1] if trimmed else "/") + "]"


def _go_regex(pattern: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(f"(?:{pattern})")
    except re.error:
        return None  # pprof ignores a drop_frames pattern it cannot compile


_RESERVED_PAREN_NAMES = ("(anonymous namespace)", "operator()")
_PAREN_RX = re.compile("|".join(re.escape(name) for name in (*_RESERVED_PAREN_NAMES, "(")))


def _simplify_function_name(name: str) -> str:
    """pprof's simplifyFunc: drop a leading '.' and an argument list, keeping reserved names."""
    name = name.removeprefix(".")
    for match in _PAREN_RX.finditer(name):
        if match.group(0) not in _RESERVED_PAREN_NAMES:
            return name[: match.start()]
    return name


# --------------------------------------------------------------------------------------------
# Helpers for rules and reports


def match_functions(pattern: str, names: Iterable[str]) -> tuple[str, ...]:
    """The names a function pattern selects, in the order given (patterns.compile_function_pattern).

    A regex that does not compile is a ConfigError (config validation compiles every pattern first).
    """
    if not pattern:
        return ()
    try:
        matches = compile_function_pattern(pattern)
    except ValueError as error:
        raise ConfigError(f"function pattern {error}") from None
    return tuple(name for name in names if matches(name))


def pprof_diff_command(base_file: Path | str, candidate_file: Path | str, *, http: bool = False) -> str:
    """The `go tool pprof` command that shows candidate minus baseline for two saved profiles.

    -normalize scales the candidate to the baseline's total first (the sides ran for different
    times or loads), so the table shows where the CPU moved; percentages are of the baseline.
    """
    view = ["-http=localhost:0"] if http else ["-top"]
    return shlex.join(["go", "tool", "pprof", f"-diff_base={base_file}", "-normalize", *view, str(candidate_file)])


# --------------------------------------------------------------------------------------------
# `perfgate profile top`


def render_top(profile: CpuProfile, *, as_json: bool) -> str:
    """The `profile top` output: pprof's -top table, or JSON [{function, flat, cum}] in profile.unit.

    Rows are sorted like pprof (flat descending, then name). The table prints values in the
    unit pprof would pick (-unit=minimum); the JSON keeps the raw integers.
    """
    rows = sorted(profile.functions.items(),
                  key=lambda item: (-abs(item[1].flat), item[0], -abs(item[1].cum)))
    if as_json:
        return json.dumps([{"function": name, "flat": cost.flat, "cum": cost.cum} for name, cost in rows],
                          indent=2, ensure_ascii=False)
    unit = _output_unit([cost for _, cost in rows], profile.total, profile.unit)

    def value(number: int) -> str:
        return scaled_label(number, profile.unit, unit)

    shown = sum(cost.flat for _, cost in rows)
    lines = [f"Profile: {profile.name}", f"Type: {profile.sample_type}"]
    if profile.duration_ns:
        lines.append(_duration_line(profile, value))
    lines.append(f"Showing nodes accounting for {value(shown)}, "
                 f"{percentage(shown, profile.total).strip()} of {value(profile.total)} total")
    lines.append(f"{'flat':>10s} {'flat':>5s}% {'sum':>5s}% {'cum':>10s} {'cum':>5s}%")
    running = 0
    for name, cost in rows:
        running += cost.flat
        lines.append(f"{value(cost.flat):>10s} {percentage(cost.flat, profile.total)} "
                     f"{percentage(running, profile.total)} {value(cost.cum):>10s} "
                     f"{percentage(cost.cum, profile.total)}  {name}")
    return "\n".join(lines)


def _duration_line(profile: CpuProfile, value) -> str:
    duration = scaled_label(profile.duration_ns, "nanoseconds", "auto")
    line = f"Duration: {duration}, Total samples = {value(profile.total)}"
    total_ns = profile.total_ns
    if total_ns:
        line += f" ({percentage(total_ns, profile.duration_ns)})"
    return line


def percentage(value: int, total: int) -> str:
    """pprof's measurement.Percentage: at least two significant digits, width 5, then '%'."""
    ratio = abs(value / total) * 100 if total else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{ratio:5.2g}%"


# pprof's unit table (internal/measurement): canonical name, aliases, factor to the base unit.
_Unit = tuple[str, tuple[str, ...], float]
_BYTE_UNITS: tuple[_Unit, ...] = (
    ("B", ("b", "byte"), 1.0), ("kB", ("kb", "kbyte", "kilobyte"), float(1 << 10)),
    ("MB", ("mb", "mbyte", "megabyte"), float(1 << 20)), ("GB", ("gb", "gbyte", "gigabyte"), float(1 << 30)),
    ("TB", ("tb", "tbyte", "terabyte"), float(1 << 40)), ("PB", ("pb", "pbyte", "petabyte"), float(1 << 50)))
_TIME_UNITS: tuple[_Unit, ...] = (
    ("ns", ("ns", "nanosecond"), 1.0), ("us", ("μs", "us", "microsecond"), 1e3),
    ("ms", ("ms", "millisecond"), 1e6), ("s", ("s", "sec", "second"), 1e9), ("hrs", ("hour", "hr"), 3.6e12))
_GCU_UNITS: tuple[_Unit, ...] = (
    ("n*GCU", ("nanogcu",), 1e-9), ("u*GCU", ("microgcu",), 1e-6), ("m*GCU", ("milligcu",), 1e-3),
    ("GCU", ("gcu",), 1.0), ("k*GCU", ("kilogcu",), 1e3), ("M*GCU", ("megagcu",), 1e6),
    ("G*GCU", ("gigagcu",), 1e9), ("T*GCU", ("teragcu",), 1e12), ("P*GCU", ("petagcu",), 1e15))
_UNIT_TYPES: tuple[tuple[tuple[_Unit, ...], _Unit], ...] = (
    (_BYTE_UNITS, _BYTE_UNITS[0]), (_TIME_UNITS, ("s", (), 1e9)), (_GCU_UNITS, ("GCU", (), 1.0)))
_UNSCALED = ("count", "sample", "unit", "minimum", "auto")


def _sniff_unit(units: tuple[_Unit, ...], unit: str) -> _Unit | None:
    unit = unit.lower()
    if len(unit) > 2:
        unit = unit.removesuffix("s")
    return next((candidate for candidate in units if unit in candidate[1]), None)


def scale(value: int, from_unit: str, to_unit: str) -> tuple[float, str]:
    """pprof's measurement.Scale: the value in to_unit ("minimum"/"auto" pick a readable one)."""
    if value < 0:
        scaled, unit = scale(-value, from_unit, to_unit)
        return -scaled, unit
    for units, default in _UNIT_TYPES:
        source = _sniff_unit(units, from_unit)
        if source is None:
            continue
        base = float(value) * source[2]
        if to_unit in ("minimum", "auto"):
            best = None
            for candidate in units:
                if (best is None or candidate[2] >= best[2]) and base / candidate[2] >= 1.0:
                    best = candidate
            target = best or default
        else:
            target = _sniff_unit(units, to_unit) or default
        return base / target[2], target[0]
    return float(value), "" if to_unit in _UNSCALED else to_unit


def scaled_label(value: int, from_unit: str, to_unit: str) -> str:
    """pprof's measurement.ScaledLabel: two decimals, '.00' dropped, unit appended, '0' bare."""
    scaled, unit = scale(value, from_unit, to_unit)
    text = f"{scaled:.2f}".removesuffix(".00")
    return "0" if text in ("0", "-0") else text + unit


def _output_unit(costs: list[FunctionCost], total: int, sample_unit: str) -> str:
    """pprof's selectOutputUnit for -unit=minimum: readable for the smallest row and the total."""
    minimum = 0
    for cost in costs:
        smallest = abs(cost.flat) or abs(cost.cum)
        if smallest and (minimum == 0 or smallest < minimum):
            minimum = smallest
    if not costs:
        return sample_unit
    minimum = minimum or total
    _, min_unit = scale(minimum, sample_unit, "minimum")
    _, max_unit = scale(total, sample_unit, "minimum")
    unit = min_unit
    if min_unit != max_unit and minimum * 100 < total:
        _, unit = scale(100 * minimum, sample_unit, "minimum")
    return unit or sample_unit


__all__ = [
    "CpuProfile", "FunctionCost", "MAX_PROFILE_BYTES", "ProfileUnavailable", "fetch_cpu_profile", "fetch_profile_body",
    "match_functions", "parse_profile", "pprof_diff_command", "profile_url", "render_top", "scaled_label",
    "time_unit_ns",
]
