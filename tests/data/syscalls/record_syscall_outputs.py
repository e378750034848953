"""Record the real outputs tests/unit/capture/test_syscalls.py reads (run as root: .venv/bin/python THIS).

Every file here is a real program's own output, nothing edited by hand:
  two_greeters.jsonl  the kernel program (runqlat.bt + syscalls.bt's probes) over one marked window in which
                      two example services took the same 2 s ghz load: pid slot 1 without knobs, slot 2 with
                      -regress-syscall-read 2ms (one extra blocking read() per call)
  gctrace.log         an example service's stderr under GODEBUG=gctrace=1 over a 2 s load with
                      -regress-alloc-bytes 65536 (its "serving" line and its GC trace lines)
meta.json keeps the parameters (pids, slots, calls served, the machine).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from support.greeter import free_port, greeter_argv, wait_for_port  # noqa: E402
from support.runq import run_load  # noqa: E402

from perfgate.capture.runq import RunqCollector  # noqa: E402

KNOB = ("-regress-syscall-read", "2ms")


def start(*knobs: str, env: dict | None = None, stderr=subprocess.DEVNULL) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(greeter_argv(port, free_port(), *knobs), stderr=stderr,  # noqa: S603
                               env={**os.environ, **(env or {})})
    wait_for_port(port)
    return process, port


def two_greeters(meta: dict) -> None:
    (plain, plain_port), (knob, knob_port) = start(), start(*KNOB)
    try:
        collector = RunqCollector(service_comm=None, service_pids=(plain.pid, knob.pid),
                                  raw_path=HERE / "two_greeters.run.jsonl", syscalls=True)
        collector.start(timeout_s=120)
        collector.begin_window()
        loads = [subprocess.Popen([sys.executable, "-c", (  # noqa: S603
            "import json, sys; sys.path[:0] = [sys.argv[1]]; from support.runq import run_load; "
            "print(json.dumps(run_load(sys.argv[2], seconds=2, rps=300, concurrency=4)['statusCodeDistribution']))"),
            str(ROOT / "tests"), f"127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True)
            for port in (plain_port, knob_port)]
        served = [json.loads(load.communicate(timeout=60)[0]).get("OK", 0) for load in loads]
        collector.end_window(HERE / "two_greeters.jsonl")
        collector.stop()
        (HERE / "two_greeters.run.jsonl").unlink()
        (HERE / "kernel.bt").unlink()  # the composed program: perfgate writes it again from the scripts
        meta["two_greeters"] = {"pids": [plain.pid, knob.pid], "slots": {"plain": 1, "knob": 2},
                                "knob": list(KNOB), "ok_calls": {"plain": served[0], "knob": served[1]},
                                "machine": platform.machine()}
    finally:
        for process in (plain, knob):
            process.terminate()
            process.wait(timeout=10)


def gctrace(meta: dict) -> None:
    with open(HERE / "gctrace.log", "wb") as log:
        process, port = start("-regress-alloc-bytes", "65536", env={"GODEBUG": "gctrace=1"}, stderr=log)
        try:
            report = run_load(f"127.0.0.1:{port}", seconds=2, rps=300, concurrency=4)
        finally:
            process.terminate()
            process.wait(timeout=10)
    meta["gctrace"] = {"ok_calls": report["statusCodeDistribution"].get("OK", 0), "knob": "-regress-alloc-bytes 65536"}


if __name__ == "__main__":
    recorded: dict = {"recorded_at": time.strftime("%Y-%m-%d")}
    two_greeters(recorded)
    gctrace(recorded)
    (HERE / "meta.json").write_text(json.dumps(recorded, indent=2) + "\n", encoding="utf-8")
