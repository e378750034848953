"""Contention end to end: real CPU hogs and a real cgroup CPU limit on the service for part of a run, on the
baseline's side, the candidate's, and on one build of a duet. The gate must never FAIL on them; a real
regression must still FAIL (when both builds met the same hog in duet, or when the runner was quiet).

The limit is the cgroup v1 cpu controller's cfs_quota_us on hosts like this one and cpu.max on cgroup v2
hosts (perfgate.capture.cgroup.CpuGroup writes whichever the machine has). Windows are short (1 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.greeter import base_config, free_port, greeter_argv, write_config
from support.paths import GREETER

from perfgate.capture.cgroup import CpuGroup
from perfgate.capture.procfs import read_processes
from perfgate.cli import main
from perfgate.errors import EXIT_INCONCLUSIVE, EXIT_PASS, EXIT_REGRESSION

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="cgroup limits need root (CI runs as root)")]

REPETITIONS, DURATION_S, RPS = 6, 1.0, 300
GATES = [{"metric": "latency.p95", "max_increase_pct": 10}, {"metric": "rps", "max_decrease_pct": 10},
         {"metric": "cpu_per_request", "max_increase_pct": 5}, {"metric": "error_rate", "max_value": 0.05}]
# The limit: half the CPU the service used in the run's first window, whatever the machine's speed (the greeter
# needs 0.04-0.2 CPU at 300 rps, by the CPU): throttled in most periods, still answering.
LIMIT_SHARE = 0.5
NEVER_FAIL = (EXIT_PASS, EXIT_INCONCLUSIVE)


def service_pid(port: int, timeout_s: float = 30) -> int:
    """The greeter perfgate started on `port` (found by its command line)."""
    wanted = f"127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for pid in read_processes():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if Path(argv[0].decode()).name == GREETER.name and wanted.encode() in argv:
                    return pid
        time.sleep(0.1)
    raise AssertionError(f"no greeter on {wanted}")


def repetitions_done(record: Path) -> int:
    with contextlib.suppress(OSError, json.JSONDecodeError):
        return len(json.loads(record.read_text())["repetitions"])
    return 0


@contextlib.contextmanager
def during(record: Path, first: int, last: int, start: Callable[[], contextlib.AbstractContextManager]
           ) -> Iterator[None]:
    """Enter start() once `record` holds `first - 1` repetitions and leave it once it holds `last`: the
    contention covers repetitions first..last (give or take the moment between two windows)."""
    stop = threading.Event()

    def run() -> None:
        while repetitions_done(record) < first - 1 and not stop.wait(0.05):
            pass
        if stop.is_set():
            return
        with start():
            while repetitions_done(record) < last and not stop.wait(0.05):
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def first_window_cpus(record: Path) -> float:
    """The CPUs the service used over the record's first load window (its CPU time over the window's length)."""
    first = json.loads(record.read_text())["repetitions"][0]
    assert first["service_cpu_ns"], f"no service CPU time in {record}'s first window"
    return first["service_cpu_ns"] / first["load"]["total_ns"]


def limit(port: int, record: Path, applied: list[float]) -> Callable[[], contextlib.AbstractContextManager]:
    """A CPU limit of LIMIT_SHARE of the service's first window, set once `record` has that window; the limit
    set goes in `applied` (CpuGroup's smallest quota is 0.01 CPU)."""
    @contextlib.contextmanager
    def start() -> Iterator[None]:
        applied.append(max(round(LIMIT_SHARE * first_window_cpus(record), 3), 0.01))
        with CpuGroup(cpus=applied[-1]) as group:
            group.move(service_pid(port))
            yield
    return start


@contextlib.contextmanager
def hogs(count: int = os.cpu_count() or 2, killed: list[subprocess.Popen] | None = None) -> Iterator[None]:
    """Busy loops. Given `killed`, they are killed on exit but reaped by the caller once perfgate's run is over:
    perfgate runs in this process, and a child reaped inside a load window would add its whole CPU time to
    perfgate's own (its children's time), hiding that window's other work."""
    processes = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)  # noqa: S603
                 for _ in range(count)]
    try:
        # high weight: the hogs outweigh whatever else already runs on a shared test machine
        with CpuGroup(weight=10_000) as group:
            for process in processes:
                group.move(process.pid)
            yield
    finally:
        for process in processes:
            process.kill()
            if killed is None:
                process.wait(timeout=10)
            else:
                killed.append(process)


def single_config(tmp: Path, *, knobs: tuple[str, ...] = ()) -> tuple[dict, int]:
    grpc, pprof = free_port(), free_port()
    config = base_config(f"127.0.0.1:{grpc}", service={"command": greeter_argv(grpc, pprof, *knobs)},
                         load={"duration_s": DURATION_S, "warmup_s": 0.5, "repetitions": REPETITIONS, "rps": RPS},
                         gates=GATES, report={"plots": False}, output=str(tmp / "out"))
    return config, grpc


def record_run(tmp: Path, *, beside=None, knobs: tuple[str, ...] = ()) -> Path:
    """One baseline-mode run; `beside(grpc_port, record_json, killed)` gives the contention to run during it
    (processes it kills go in `killed`, reaped after the run)."""
    tmp.mkdir(parents=True, exist_ok=True)
    config, grpc = single_config(tmp, knobs=knobs)
    out = tmp / "out" / "baseline"
    killed: list[subprocess.Popen] = []
    try:
        with beside(grpc, out / "record.json", killed) if beside else contextlib.nullcontext():
            assert main(["run", "--baseline", "--config", str(write_config(tmp, config))]) == EXIT_PASS
    finally:
        for process in killed:
            process.wait(timeout=10)
    return out


# The records come from separate runs minutes apart: 1 % run-to-run drift stands in for the history a CI
# gate would have, so that the comparison can FAIL at all.
BLIND = {"max_steal_pct": 100, "max_others_pct": 100, "max_throttled_pct": 100, "max_wait_ratio": 1e9,
         "max_runq_p99_ratio": 1e9}  # every contention check off (a limit is a maximum: 100 % never exceeds it)


def compare(tmp: Path, baseline: Path, candidate: Path, contention: dict | None = None) -> tuple[int, dict]:
    out = tmp / ("blind" if contention else "cmp")
    config = write_config(tmp, {"gates": GATES, "report": {"plots": False},
                                "compare": {"run_noise_pct": 1, "contention": contention or {}}})
    code = main(["compare", "--config", str(config), "--baseline", str(baseline), "--candidate", str(candidate),
                 "--out", str(out)])
    return code, json.loads((out / "verdict.json").read_text())


def starved(verdict: dict, side: str) -> dict[int, list[str]]:
    return {w["repetition"]: w["causes"] for w in verdict["contention"][side]["starved"]}


def outcomes(verdict: dict) -> dict[str, str]:
    return {rule["metric"]: rule["outcome"] for rule in verdict["rules"]}


def cpu_rose(verdict: dict) -> bool:
    """CPU per request rose significantly, as the gate decides whether a latency FAIL on a contended runner
    stands: its one-sided test at alpha, before the correction over the rules (docs/statistics.md)."""
    cpu = next(rule["comparison"] for rule in verdict["rules"] if rule["metric"] == "cpu_per_request")
    return cpu["p_value"] < cpu["alpha"] and cpu["shift"] > 0


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict[str, Path | float]:
    """Baseline-mode records of one binary: as quiet as the machine is, with a CPU limit on the service from
    repetition 2 on (enough windows that a rank test could FAIL on them), and with hogs beside it in
    repetitions 3-5; "limit_cpus" is the limit "limited" ran under."""
    root = tmp_path_factory.mktemp("contention")
    applied: list[float] = []
    limited = record_run(root / "limited", beside=lambda port, rec, _killed: during(rec, 2, REPETITIONS,
                                                                                   limit(port, rec, applied)))
    assert len(applied) == 1, applied
    return {
        "quiet": record_run(root / "quiet"),
        "limited": limited,
        "limit_cpus": applied[0],
        "hogged": record_run(root / "hogged", beside=lambda _port, rec, killed: during(rec, 3, 5,
                                                                                      lambda: hogs(1, killed))),
    }


@pytest.mark.parametrize("limited_side", ["candidate", "baseline"])
def test_a_cpu_limit_on_either_side_never_fails_and_is_named(records, tmp_path, limited_side):
    base, cand = (records["quiet"], records["limited"])[:: 1 if limited_side == "candidate" else -1]
    code, verdict = compare(tmp_path, base, cand)
    print(verdict["headline"], json.dumps(verdict["contention"][limited_side]["starved"], indent=1), sep="\n")
    assert code in NEVER_FAIL, verdict["headline"]
    windows = starved(verdict, limited_side)
    assert all("throttling" in windows.get(i, ()) for i in range(3, REPETITIONS + 1)), windows
    assert "throttling" not in windows.get(1, ())  # before the limit
    figures = {w["repetition"]: w for w in verdict["contention"][limited_side]["windows"]}
    assert all(figures[i]["quota_cpus"] == pytest.approx(records["limit_cpus"], abs=1e-4)
               for i in range(3, REPETITIONS + 1)), figures
    assert verdict["contention"]["one_sided"], "the sides did not meet the same contention"
    # the limit held the service to its quota (the latency it cost is too noisy a witness on a shared machine;
    # the duet test below shows the same limit makes a blind comparison FAIL): throttled in most periods,
    # unless other processes starved it as well, so that in some periods it never reached its quota
    assert all(figures[i]["throttled_pct"] >= 50 or "other processes" in windows[i]
               for i in range(3, REPETITIONS + 1)), figures


@pytest.mark.parametrize("hogged_side", ["candidate", "baseline"])
def test_hogs_on_either_side_never_fail_and_are_named(records, tmp_path, hogged_side):
    """On a quiet 2-CPU runner the hog's busy loop is half the machine's CPU time, and its windows are starved
    whatever the service's mean wait (there it stays small: docs/statistics.md "Contended runner")."""
    base, cand = (records["quiet"], records["hogged"])[:: 1 if hogged_side == "candidate" else -1]
    code, verdict = compare(tmp_path, base, cand)
    print(verdict["headline"], json.dumps(verdict["contention"][hogged_side]["starved"], indent=1), sep="\n")
    assert code in NEVER_FAIL, verdict["headline"]
    windows = starved(verdict, hogged_side)
    assert {3, 4, 5} <= set(windows), windows
    assert all({"other processes", "run-queue wait"} & set(windows[i]) for i in (3, 4, 5)), windows
    # the hogs are named among the other processes of those windows
    figures = {w["repetition"]: w for w in verdict["contention"][hogged_side]["windows"]}
    assert any(other.startswith("python") for other in figures[4]["top_others"]), figures[4]


# ---------------------------------------------------------------- duet
def duet_config(tmp: Path, *, head_knobs: tuple[str, ...] = (), pairs: int = REPETITIONS) -> tuple[dict, int, int]:
    (head, head_pprof), (base, base_pprof) = (free_port(), free_port()), (free_port(), free_port())
    compare_section = {"mode": "interleaved", "schedule": "duet", "baseline_address": f"127.0.0.1:{base}",
                       "baseline_service": {"command": greeter_argv(base, base_pprof)}}
    config = base_config(f"127.0.0.1:{head}", service={"command": greeter_argv(head, head_pprof, *head_knobs)},
                         load={"duration_s": DURATION_S, "warmup_s": 0.5, "repetitions": pairs, "rps": RPS},
                         compare=compare_section, gates=GATES, report={"plots": False}, output=str(tmp / "out"))
    return config, head, base


def run_duet(tmp: Path, config: dict, beside=contextlib.nullcontext) -> tuple[int, dict]:
    with beside():
        code = main(["run", "--config", str(write_config(tmp, config))])
    return code, json.loads((tmp / "out" / "verdict.json").read_text())


def test_duet_with_a_cpu_limit_on_one_build_never_fails(tmp_path):
    pairs = 8
    config, head, _ = duet_config(tmp_path, pairs=pairs)
    record = tmp_path / "out" / "candidate" / "record.json"
    applied: list[float] = []
    code, verdict = run_duet(tmp_path, config, lambda: during(record, 2, pairs, limit(head, record, applied)))
    print(verdict["headline"], json.dumps(verdict["contention"]["candidate"]["starved"], indent=1), sep="\n")
    assert code in NEVER_FAIL, verdict["headline"]
    assert verdict["contention"]["shared_windows"]
    windows = starved(verdict, "candidate")
    assert all("throttling" in windows.get(i, ()) for i in range(3, pairs + 1)), windows
    assert not any("throttling" in causes for causes in starved(verdict, "baseline").values())
    assert verdict["contention"]["one_sided"]
    # the limit did hurt the limited build: with the contention checks off, the same pairs FAIL
    out = tmp_path / "out"
    blind_code, blind = compare(tmp_path, out / "baseline", out / "candidate", BLIND)
    assert blind_code == EXIT_REGRESSION, blind["headline"]


def test_duet_a_real_regression_beside_hogs_still_fails(tmp_path):
    """Hogs beside both builds for the whole run are the same contention for both: the paired CPU comparison
    stays fair, CPU per request rose (checksumPayload does three times its work), so the gate FAILs."""
    config, _, _ = duet_config(tmp_path, head_knobs=("-regress-function", "checksumPayload",
                                                     "-regress-cpu-pct", "200"), pairs=8)
    code, verdict = run_duet(tmp_path, config, lambda: hogs(1))
    print(verdict["headline"], verdict["contention"]["candidate"]["starved"][:1], outcomes(verdict),
          next(r["reason"] for r in verdict["rules"] if r["metric"] == "cpu_per_request"), sep="\n")
    assert verdict["contention"]["candidate"]["starved"], "the hogs were not seen"
    assert verdict["contention"]["one_sided"] is None
    reasons = "\n".join(rule["reason"] for rule in verdict["rules"])
    assert code == EXIT_REGRESSION, reasons
    assert outcomes(verdict)["cpu_per_request"] == "FAIL", reasons


def test_on_a_quiet_runner_a_latency_only_regression_fails(tmp_path):
    """A 5 ms sleep on 10 % of the calls: FAIL when the runner was quiet. A shared machine is not always
    quiet: then the latency FAIL stands only if CPU per request rose too (sleeping calls cost the Go runtime
    some CPU), and otherwise the verdict is INCONCLUSIVE "runner contended" — never a silent PASS."""
    config, _, _ = duet_config(tmp_path, head_knobs=("-regress-sleep", "5ms", "-regress-sleep-pct", "10"), pairs=8)
    code, verdict = run_duet(tmp_path, config)
    print(verdict["headline"])
    rules = outcomes(verdict)
    if not verdict["contention"]["candidate"]["starved"] and not verdict["contention"]["baseline"]["starved"]:
        assert code == EXIT_REGRESSION and rules["latency.p95"] == "FAIL", verdict["headline"]
    elif cpu_rose(verdict):  # the gate's own test: CPU per request's one-sided p below alpha, unadjusted
        assert code == EXIT_REGRESSION and verdict["contention"]["one_sided"] is None, verdict["headline"]
    else:  # a latency-only FAIL on a contended runner is INCONCLUSIVE, and the verdict says why
        assert code == EXIT_INCONCLUSIVE and rules["latency.p95"] == "INCONCLUSIVE", verdict["headline"]
        assert any(note.startswith("runner contended: ") for note in verdict["notes"])
        assert any("runner" in tip for tip in verdict["suggestions"]), verdict["suggestions"]
