"""`perfgate doctor`'s entries for the service's system calls and garbage collections.

syscalls: one real run of the kernel program with syscalls.bt's probes composed in (the way a run attaches
it), timing doctor's own system calls in a marked window. gc: where a run would read the GC figures from
(GODEBUG=gctrace=1 of a service perfgate starts, if it is a Go program; else expvar's /debug/vars on
cpu.pprof_url) and whether that source is there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from perfgate.capture.gc import GCTRACE_SETTING, GODEBUG, is_go_binary, vars_url
from perfgate.capture.runq import RunqCollector, RunqUnavailable
from perfgate.config import Config

ATTACH_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
VARS_TIMEOUT_S = 3.0
MAX_VARS_BYTES = 4 * 1024 * 1024


def check_syscalls(bpftrace_path: str) -> tuple[bool, str]:
    """Attach the composed kernel program, time this process's calls in one marked window, detach."""
    with tempfile.TemporaryDirectory(prefix="perfgate-doctor-") as folder:
        collector = RunqCollector(service_comm=None, service_pids=(os.getpid(),), bpftrace=bpftrace_path,
                                  raw_path=Path(folder) / "run.jsonl", syscalls=True)
        try:
            collector.start(timeout_s=ATTACH_TIMEOUT_S)
            collector.begin_window()
            for _ in range(20):
                os.stat(folder)
            stats = collector.end_window(Path(folder) / "window.jsonl").syscalls((os.getpid(),))
            collector.stop(timeout_s=STOP_TIMEOUT_S)
        except RunqUnavailable as error:
            return False, f"the kernel program with syscalls.bt's probes did not run: {error.reason}"
        finally:
            collector.close()
    if isinstance(stats, str):
        return False, stats
    calls = sum(c.count for c in stats.calls)
    if not calls:
        return False, "syscalls.bt's probes attached but timed none of perfgate's own system calls"
    top = ", ".join(f"{c.name} {c.count}" for c in stats.calls[:3])
    return True, f"syscalls.bt's probes (in the kernel program) timed {calls} of perfgate's own calls ({top})"


def check_gc(config: Config | None, pprof_url: str | None) -> tuple[bool, str]:
    """Where a run would read the GC figures, and whether they are there."""
    service = config.service if config is not None else None
    if service is not None and service.command:
        return _gctrace_status(service.command[0])
    if pprof_url:
        return _expvar_status(pprof_url)
    return False, ("perfgate does not start the service (service.command) and no cpu.pprof_url is set: "
                   "no GODEBUG=gctrace=1 lines and no expvar /debug/vars to read GC figures from")


def _gctrace_status(program: str) -> tuple[bool, str]:
    how = f"perfgate starts the service with {GODEBUG}={GCTRACE_SETTING} and reads its lines from service.log"
    if "{" in program:
        return True, f"{how} (the built binary: a Go program prints one line per collection)"
    path = shutil.which(program) or program
    go = is_go_binary(Path(path))
    if go is None:
        return False, f"{how}, but cannot read {path!r} to see whether it is a Go program"
    if not go:
        return False, (f"{how}, but {path!r} is not a Go program (no Go build info; a wrapper script's "
                       "Go child still reports, through its inherited environment)")
    return True, f"{how}: {path} is a Go program"


def _expvar_status(pprof_url: str) -> tuple[bool, str]:
    url = vars_url(pprof_url)
    if not url.lower().startswith(("http://", "https://")):
        return False, f"cpu.pprof_url {pprof_url!r} is not an http:// or https:// URL"
    try:
        with urllib.request.urlopen(url, timeout=VARS_TIMEOUT_S) as response:  # noqa: S310 - http(s), checked above
            memstats = json.loads(response.read(MAX_VARS_BYTES)).get("memstats")
    except urllib.error.HTTPError as error:
        return False, (f"GET {url} answered HTTP {error.code}: the service serves no expvar (import \"expvar\" "
                       "and serve expvar.Handler() beside net/http/pprof), and perfgate does not start it")
    except (urllib.error.URLError, OSError, ValueError, AttributeError) as error:
        return False, f"GET {url} failed: {type(error).__name__}"
    if not isinstance(memstats, dict) or "NumGC" not in memstats:
        return False, f"GET {url} serves no memstats.NumGC (not a Go program's expvar?)"
    return True, f"{url} serves memstats: NumGC {memstats['NumGC']}, PauseTotalNs {memstats.get('PauseTotalNs')}"
