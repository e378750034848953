"""Regenerate the real CPU-profile fixtures in this folder (run from the repo root):

    .venv/bin/python tests/data/pprof/make_fixtures.py

- gobench.pb.gz: `go test -bench . -cpuprofile` of tests/data/gobench (recursion, inlining,
  closures, generics, pointer-receiver methods).
- greeter-base-N.pb.gz / greeter-cand-N.pb.gz: 2 s profiles of the example service
  (.tools/bin/greeter, `scripts/setup.sh --examples`) under ghz load, the candidate started with
  -regress-function checksumPayload -regress-cpu-pct 30.
- greeter-layer-{allocs,mutex,block}.pb.gz: 2 s delta profiles (net/http/pprof's ?seconds=2) and
  greeter-layer-goroutine.pb.gz a goroutine snapshot of the greeter under ghz load, started with
  -regress-alloc-bytes 65536 -regress-lock-hold 1ms -regress-leak-every 100 (the knobs' functions
  main.allocBallast, main.greetingPrefix and main.leakWatcher are in them), fetched by perfgate's own
  capture code while a CPU profile runs as it does in a repetition.

All are captured for real; nothing is edited by hand. Tests compare perfgate's figures for them
with `go tool pprof` at test time, so regenerating them needs no other change.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from support.pprof import gobench_profile, profile_under_load  # noqa: E402

from perfgate.capture.layers import DELTA_KINDS, fetch_delta, fetch_snapshot  # noqa: E402

REPETITIONS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def greeter_profiles(side: str, knobs: list[str]) -> None:
    grpc_port, pprof_port = free_port(), free_port()
    argv = [str(ROOT / ".tools/bin/greeter"), "-grpc-addr", f"127.0.0.1:{grpc_port}",
            "-pprof-addr", f"127.0.0.1:{pprof_port}", *knobs]
    process = subprocess.Popen(argv, stderr=subprocess.DEVNULL)  # noqa: S603 - argv list
    try:
        wait_for(grpc_port)
        wait_for(pprof_port)
        for repetition in range(1, REPETITIONS + 1):
            body = profile_under_load(ROOT / ".tools/bin/ghz", f"127.0.0.1:{grpc_port}",
                                      f"http://127.0.0.1:{pprof_port}", load_s=3.0, profile_s=2)
            (HERE / f"greeter-{side}-{repetition}.pb.gz").write_bytes(body)
    finally:
        process.terminate()
        process.wait(timeout=10)


def greeter_layer_profiles() -> None:
    from concurrent.futures import ThreadPoolExecutor

    grpc_port, pprof_port = free_port(), free_port()
    argv = [str(ROOT / ".tools/bin/greeter"), "-grpc-addr", f"127.0.0.1:{grpc_port}",
            "-pprof-addr", f"127.0.0.1:{pprof_port}", "-regress-alloc-bytes", "65536",
            "-regress-lock-hold", "1ms", "-regress-leak-every", "100"]
    process = subprocess.Popen(argv, stderr=subprocess.DEVNULL)  # noqa: S603 - argv list
    pprof_url = f"http://127.0.0.1:{pprof_port}"
    try:
        wait_for(grpc_port)
        wait_for(pprof_port)
        with ThreadPoolExecutor(max_workers=len(DELTA_KINDS)) as pool:
            deltas = {name: pool.submit(fetch_delta, pprof_url, kind, 2) for name, kind in DELTA_KINDS.items()}
            profile_under_load(ROOT / ".tools/bin/ghz", f"127.0.0.1:{grpc_port}", pprof_url,
                               load_s=2.5, profile_s=2)
        for name, body in deltas.items():
            (HERE / f"greeter-layer-{name}.pb.gz").write_bytes(body.result())
        (HERE / "greeter-layer-goroutine.pb.gz").write_bytes(fetch_snapshot(pprof_url))
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(gobench_profile(Path(tmp)), HERE / "gobench.pb.gz")
    greeter_profiles("base", [])
    greeter_profiles("cand", ["-regress-function", "checksumPayload", "-regress-cpu-pct", "30"])
    greeter_layer_profiles()


if __name__ == "__main__":
    main()
