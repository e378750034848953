"""Record the real bpftrace outputs tests/unit/capture/test_runq_parse.py reads (run as root: .venv/bin/python THIS).

Every file here is bpftrace's own stdout (the collector's raw_path) or stderr, nothing edited by hand:
  greeter_ok.jsonl        runqlat.bt around a 2 s ghz load on the example service, comm+pid filter, SIGINT
  greeter_ok.stderr       bpftrace's stderr of that run (the RLIMIT_MEMLOCK line)
  pid_filter_only.jsonl   a 1.5 s load, service filtered by pid only (no comm)
  killed_mid.jsonl        bpftrace SIGKILLed 2.5 s into a loaded window (two snapshots printed)
  killed_early.jsonl      bpftrace SIGKILLed 0.5 s into a loaded window (no histogram snapshot yet)
  shapes.jsonl            a bpftrace one-liner printing hist (0, 1, negative), lhist (under/overflow),
                          keyed maps, count, stats and avg, named like runqlat.bt's maps
meta.json keeps each recording's parameters (the collector's argv, the exit code, the resulting note).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from perfgate.capture.runq import RunqCollector

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
GREETER = ROOT / ".tools" / "bin" / "greeter"
GHZ = ROOT / ".tools" / "bin" / "ghz"
SHAPES = " ".join([
    "BEGIN {",
    "@usecs = hist(0); @usecs = hist(1); @usecs = hist(5); @usecs = hist(-3); @usecs = hist(1000);",
    "@svc_usecs = lhist(3, 10, 50, 10); @svc_usecs = lhist(15, 10, 50, 10);",
    "@svc_usecs = lhist(49, 10, 50, 10); @svc_usecs = lhist(77, 10, 50, 10);",
    '@m["a b"] = count(); @m["x\\"y"] = count(); @c = count();',
    '@s = stats(7); @s = stats(5); @a = avg(9); @kh["k1"] = hist(3); exit(); }',
])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_argv(port: int, seconds: float) -> list[str]:
    return [str(GHZ), "--insecure", "--call", "greeter.Greeter/SayHello", "-d", '{"name":"x","items":64}',
            "-z", f"{seconds}s", "-c", "2", "--rps", "300", "-O", "json", f"127.0.0.1:{port}"]


def record(name: str, port: int, pid: int, *, comm: str | None, load_s: float, kill_after_s: float | None,
           meta: dict) -> None:
    collector = RunqCollector(service_comm=comm, service_pids=[pid], raw_path=HERE / f"{name}.jsonl")
    collector.start()
    try:
        loader = subprocess.Popen(load_argv(port, load_s), stdout=subprocess.DEVNULL)  # noqa: S603 - argv list
        if kill_after_s is not None:
            time.sleep(kill_after_s)
            os.kill(collector.pid, signal.SIGKILL)
        loader.wait(timeout=load_s + 30)
        stats = collector.stop()
    finally:
        collector.close()
    (HERE / f"{name}.stderr").write_text("".join(collector.stderr_lines), encoding="utf-8")
    meta[name] = {"argv": collector.argv(), "returncode": collector.returncode, "status": stats.status,
                  "note": stats.note, "service_comm": comm, "service_pid": pid}


def main() -> None:
    meta: dict = {}
    port = free_port()
    service = subprocess.Popen(  # noqa: S603 - argv list
        [str(GREETER), "-grpc-addr", f"127.0.0.1:{port}", "-pprof-addr", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        record("greeter_ok", port, service.pid, comm="greeter", load_s=2, kill_after_s=None, meta=meta)
        record("pid_filter_only", port, service.pid, comm=None, load_s=1.5, kill_after_s=None, meta=meta)
        record("killed_mid", port, service.pid, comm="greeter", load_s=4, kill_after_s=2.5, meta=meta)
        record("killed_early", port, service.pid, comm="greeter", load_s=2, kill_after_s=0.5, meta=meta)
    finally:
        service.terminate()
        service.wait(timeout=10)
    shapes = subprocess.run(["bpftrace", "-f", "json", "-e", SHAPES],  # noqa: S603 - argv list
                            capture_output=True, text=True, timeout=60, check=True)
    (HERE / "shapes.jsonl").write_text(shapes.stdout, encoding="utf-8")
    meta["shapes"] = {"argv": ["bpftrace", "-f", "json", "-e", SHAPES], "returncode": shapes.returncode}
    (HERE / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
