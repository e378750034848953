"""The Go runtime's own account of its garbage collections, read over one load window.

Two sources, in this order:
  gctrace  a service perfgate starts gets GODEBUG=gctrace=1 (`with_gctrace`): the runtime writes one line
           per collection to stderr, which perfgate keeps in service.log; a window's collections are the
           lines written between its two byte offsets (`read_gctrace`). Each line gives the two
           stop-the-world phases' wall time (the pause) and the collector's CPU time.
  expvar   a service that serves expvar's /debug/vars (on its pprof address): runtime.MemStats' NumGC and
           PauseTotalNs before and after the window (`fetch_memstats`), their difference.
Either degrades to a note: a service that is not a Go program prints no gctrace line and serves no memstats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from perfgate.capture.pprof import ProfileUnavailable, fetch_profile_body, profile_url
from perfgate.config import ServiceConfig

GODEBUG = "GODEBUG"
GCTRACE_SETTING = "gctrace=1"
MAX_WINDOW_BYTES = 8 * 1024 * 1024  # of service output read per window; a service printing more is cut there
MAX_LINE_CHARS = 400  # of a gctrace line kept in the record (a real one is ~150)
MAX_LOOKBACK_BYTES = 4 * 1024 * 1024  # read before a window without GC to tell "no GC" from "not a Go program"
VARS_TIMEOUT_S = 5.0
MEMSTATS_KEYS = ("NumGC", "PauseTotalNs", "NumForcedGC")
# gc 12 @3.045s 4%: 0.031+1.2+0.042 ms clock, 0.12+0.35/0.9/0.4+0.17 ms cpu, 4->4->1 MB, 5 MB goal, ...
_NUMBER = r"(\d+(?:\.\d+)?)"
GCTRACE_LINE = re.compile(
    rf"gc (\d+) @{_NUMBER}s \d+%: {_NUMBER}\+{_NUMBER}\+{_NUMBER} ms clock, "
    rf"{_NUMBER}\+{_NUMBER}/{_NUMBER}/{_NUMBER}\+{_NUMBER} ms cpu")


class GcUnavailable(Exception):
    """This window's collections cannot be known; the message says why (it becomes the record's note)."""


@dataclass(frozen=True)
class GcWindow:
    """The collections of one window: how many, their stop-the-world time, the collector's CPU (gctrace)."""

    cycles: int
    pause_ns: int
    cpu_ns: int | None
    raw: str  # what the record keeps of it (the gctrace lines, or both memstats snapshots as JSON)


def traced_service(service: ServiceConfig, environ: Mapping[str, str]) -> ServiceConfig:
    """The service started with gctrace on; a GODEBUG it gets (service.env, or passed through with
    service.pass_env from `environ`) keeps its other settings."""
    env = dict(service.env)
    if GODEBUG not in env and GODEBUG in service.pass_env and GODEBUG in environ:
        env[GODEBUG] = environ[GODEBUG]
    return replace(service, env=MappingProxyType(with_gctrace(env)))


def with_gctrace(env: Mapping[str, str]) -> dict[str, str]:
    """The service's environment with gctrace=1 added to GODEBUG; a gctrace the user set is left alone."""
    godebug = env.get(GODEBUG, "")
    settings = [part for part in godebug.split(",") if part.strip()]
    if any(part.strip().startswith("gctrace=") for part in settings):
        return dict(env)
    return {**env, GODEBUG: ",".join([*settings, GCTRACE_SETTING])}


# ---------------------------------------------------------------- gctrace
def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_gctrace(log: Path, start: int, end: int) -> GcWindow:
    """The collections whose gctrace lines the service wrote between byte offsets start and end of its log."""
    data = _read_range(log, start, min(end, start + MAX_WINDOW_BYTES))
    found = [(line, match) for line in data.decode("utf-8", errors="replace").splitlines()
             if (match := GCTRACE_LINE.search(line))]
    lines = [match for _, match in found]
    if not lines and not _any_gctrace_before(log, start):
        raise GcUnavailable(f"no GC trace from the service in {log.name} although perfgate set {GODEBUG}="
                            f"{GCTRACE_SETTING}: it is not a Go program, or it overrides {GODEBUG}")
    pause_ms = sum(float(m.group(3)) + float(m.group(5)) for m in lines)
    cpu_ms = sum(float(m.group(i)) for m in lines for i in range(6, 11))
    return GcWindow(cycles=len(lines), pause_ns=round(pause_ms * 1e6), cpu_ns=round(cpu_ms * 1e6),
                    raw="".join(line[match.start():][:MAX_LINE_CHARS] + "\n" for line, match in found))


def _read_range(path: Path, start: int, end: int) -> bytes:
    if end <= start:
        return b""
    try:
        with open(path, "rb") as log:
            log.seek(start)
            return log.read(end - start)
    except OSError as error:
        raise GcUnavailable(f"cannot read the service's output {path.name}: {error.strerror or error}") from error


def _any_gctrace_before(log: Path, offset: int) -> bool:
    """A window without a collection is a real zero only if the service has traced collections before."""
    data = _read_range(log, max(0, offset - MAX_LOOKBACK_BYTES), offset)
    return GCTRACE_LINE.search(data.decode("utf-8", errors="replace")) is not None


# ---------------------------------------------------------------- expvar
def vars_url(pprof_url: str) -> str:
    """expvar's /debug/vars on the same server as net/http/pprof."""
    return profile_url(pprof_url, "x").rsplit("/debug/pprof/", 1)[0] + "/debug/vars"


def fetch_memstats(pprof_url: str) -> dict[str, int]:
    """NumGC, PauseTotalNs (and NumForcedGC) from /debug/vars now; GcUnavailable when it is not served."""
    url = vars_url(pprof_url)
    try:
        body = fetch_profile_body(url, None, timeout_s=VARS_TIMEOUT_S, kind="expvar")
        memstats = json.loads(body).get("memstats")
    except (ValueError, AttributeError) as error:
        raise GcUnavailable(f"{url} did not answer expvar JSON with memstats ({type(error).__name__})") from None
    except ProfileUnavailable as error:  # not served, refused, timed out
        raise GcUnavailable(error.reason) from None
    if not isinstance(memstats, dict):
        raise GcUnavailable(f"{url} serves no memstats (a Go service shows them when it imports expvar)")
    snapshot = {}
    for key in MEMSTATS_KEYS:
        value = memstats.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise GcUnavailable(f"{url}: memstats.{key} is not a count ({str(value)[:40]!r})")
        snapshot[key] = value
    return snapshot


def memstats_window(before: Mapping[str, int], after: Mapping[str, int]) -> GcWindow:
    cycles = after["NumGC"] - before["NumGC"]
    pause_ns = after["PauseTotalNs"] - before["PauseTotalNs"]
    if cycles < 0 or pause_ns < 0:
        raise GcUnavailable("the service's memstats went backwards during the window (it restarted?)")
    raw = json.dumps({"before": dict(before), "after": dict(after)}, sort_keys=True) + "\n"
    return GcWindow(cycles=cycles, pause_ns=pause_ns, cpu_ns=None, raw=raw)


# ---------------------------------------------------------------- is it a Go program?
GO_BUILDINFO_MAGIC = b"\xff Go buildinf:"
MAX_SCAN_BYTES = 512 * 1024 * 1024
SCAN_CHUNK = 1024 * 1024


def is_go_binary(path: Path) -> bool | None:
    """True when the file holds Go's build info (every Go binary since Go 1.13), False when not, None when it
    cannot be read. The runtime prints gctrace lines only in a Go program."""
    try:
        with open(path, "rb") as binary:
            tail = b""
            for _ in range(MAX_SCAN_BYTES // SCAN_CHUNK):
                chunk = binary.read(SCAN_CHUNK)
                if not chunk:
                    return False
                if GO_BUILDINFO_MAGIC in tail + chunk:
                    return True
                tail = chunk[-len(GO_BUILDINFO_MAGIC):]
    except OSError:
        return None
    return False
