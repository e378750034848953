"""`perfgate run` end to end against the real example service, ghz and (where it works) bpftrace."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.greeter import base_config, free_port, greeter_argv, write_config
from support.imports import imports_of
from support.paths import GREETER, ROOT, TOOLS_BIN

from perfgate.cli import main
from perfgate.errors import EXIT_PASS, EXIT_TOOL
from perfgate.progress import Progress
from perfgate.record import load_record

pytestmark = pytest.mark.slow


def run(tmp_path: Path, config: dict, *extra: str) -> int:
    return main(["run", "--config", str(write_config(tmp_path, config)), "--out", str(tmp_path / "out"), *extra])


def test_baseline_run_records_every_repetition_with_raw_reports(greeter, tmp_path, capsys):
    config = base_config(greeter.address, pprof_url=greeter.pprof_url, kernel={"enabled": True})
    assert run(tmp_path, config, "--baseline") == EXIT_PASS
    err = capsys.readouterr().err
    assert "repetition 3/3" in err and "record saved in" in err
    record = load_record(tmp_path / "out" / "baseline")
    assert record.role == "baseline" and record.complete
    assert [r.index for r in record.repetitions] == [1, 2, 3]
    for rep in record.repetitions:
        raw = json.loads(record.file(rep.load_file).read_text())
        assert rep.load.count == raw["count"] > 0 and rep.load.ok_count == rep.load.count
        assert rep.load.p95_ns == next(d["latency"] for d in raw["latencyDistribution"] if d["percentage"] == 95)
        assert rep.cpu.status == "ok", rep.cpu.reason
        assert record.file(rep.cpu.file).stat().st_size > 0 and rep.cpu.total_cpu_ns > 0
        assert rep.runq.status in ("ok", "partial", "unavailable")
        if rep.runq.status != "unavailable":
            assert rep.runq.stats.machine.count > 0
            assert record.file(rep.runq.file).exists()
    env = record.environment
    assert env.nproc == os.cpu_count() and env.ghz_version.startswith("v0.121")
    assert (tmp_path / "out" / "baseline" / "load" / "warmup.json").exists()


def test_the_cpu_profile_covers_the_whole_load_window(tmp_path):
    """The profile request goes out before the load starts and lasts floor(D) s: it holds most of the CPU the
    service spent in the window (a profile inside the window with margins would hold half of a 2 s one's)."""
    grpc, pprof = free_port(), free_port()
    config = base_config(f"127.0.0.1:{grpc}", pprof_url=f"http://127.0.0.1:{pprof}",
                         service={"command": greeter_argv(grpc, pprof), "start_timeout_s": 20},
                         load={"duration_s": 2, "repetitions": 2, "warmup_s": 0.3})
    assert run(tmp_path, config, "--baseline") == EXIT_PASS
    for rep in load_record(tmp_path / "out" / "baseline").repetitions:
        assert rep.cpu.status == "ok", rep.cpu.reason
        assert rep.cpu.duration_ns >= 1.9e9
        assert rep.service_cpu_ns, "the service's CPU clock was not read"
        assert rep.cpu.total_cpu_ns >= 0.75 * rep.service_cpu_ns, (rep.cpu.total_cpu_ns, rep.service_cpu_ns)


def test_perfgate_starts_and_stops_the_service_itself(tmp_path):
    grpc, pprof = free_port(), free_port()
    config = base_config(f"127.0.0.1:{grpc}", pprof_url=f"http://127.0.0.1:{pprof}",
                         service={"command": greeter_argv(grpc, pprof), "start_timeout_s": 20},
                         load={"repetitions": 2})
    assert run(tmp_path, config) == EXIT_PASS
    record = load_record(tmp_path / "out" / "candidate")
    assert len(record.ok_repetitions) == 2
    assert "greeter: serving" in (tmp_path / "out" / "candidate" / "service.log").read_text()
    from support.greeter import wait_for_port

    with pytest.raises(TimeoutError):
        wait_for_port(grpc, timeout_s=0.5)  # stopped


def test_unreachable_target_exits_3_with_the_reason(tmp_path, capsys):
    from perfgate.load.ghz import health_proto

    address = f"127.0.0.1:{free_port()}"
    config = base_config(address, target={"proto": str(health_proto()), "call": "grpc.health.v1.Health/Check",
                                          "data": {}})
    assert run(tmp_path, config) == EXIT_TOOL
    err = capsys.readouterr().err
    assert f"target {address} unreachable: 100% of" in err and "Unavailable" in err
    assert "start the service first or set service.command" in err


def test_ghz_missing_from_path_exits_3_with_install_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert run(tmp_path, base_config("127.0.0.1:1")) == EXIT_TOOL
    err = capsys.readouterr().err
    assert "ghz not found on PATH" in err and "scripts/setup.sh --ghz" in err


def test_service_that_never_becomes_ready_is_reaped(tmp_path, capsys):
    pid_file = tmp_path / "pid"
    script = ("import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
              "print('booting slowly: waiting for the database', file=sys.stderr, flush=True); time.sleep(120)")
    config = base_config(f"127.0.0.1:{free_port()}",
                         service={"command": [sys.executable, "-c", script, str(pid_file)], "ready": "port",
                                  "start_timeout_s": 2})
    assert run(tmp_path, config) == EXIT_TOOL
    err = capsys.readouterr().err
    assert "did not become ready within 2 s" in err
    assert "booting slowly: waiting for the database" in err  # its output tail is shown
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists(), "the service process was not reaped"


def test_a_repetition_that_fails_midway_keeps_the_finished_ones(tmp_path, capsys):
    """The service dies during the run: finished repetitions and the failure stay on disk."""
    grpc = free_port()
    command = ["timeout", "3.2", str(GREETER), "-grpc-addr", f"127.0.0.1:{grpc}", "-pprof-addr", ""]
    config = base_config(f"127.0.0.1:{grpc}", service={"command": command, "ready": "port"},
                         load={"repetitions": 4, "duration_s": 1.0, "warmup_s": 0.5})
    assert run(tmp_path, config) == EXIT_TOOL
    record = load_record(tmp_path / "out" / "candidate")
    assert not record.complete
    assert record.ok_repetitions, "the repetitions finished before the failure were lost"
    assert any(note.startswith("run stopped early: ") for note in record.notes)
    failed = [r for r in record.repetitions if r.failure]
    assert len(failed) == 1 and failed[0].index == len(record.ok_repetitions) + 1
    for rep in record.ok_repetitions:
        assert record.file(rep.load_file).exists()


def test_total_mode_and_progress_lines_in_logs(greeter, tmp_path, capsys):
    config = base_config(greeter.address, load={"duration_s": None, "total": 300, "repetitions": 2,
                                                "warmup_s": 0})
    config["load"].pop("duration_s")
    assert run(tmp_path, config) == EXIT_PASS
    record = load_record(tmp_path / "out" / "candidate")
    assert [r.load.count for r in record.repetitions] == [300, 300]
    err = capsys.readouterr().err
    assert "perfgate: repetition 1/2 started" in err  # plain lines when stderr is not a terminal


def test_greeter_binary_and_tools_are_installed():
    assert GREETER.exists() and (TOOLS_BIN / "ghz").exists(), "run scripts/setup.sh (make test does)"
    assert str(TOOLS_BIN) in os.environ["PATH"]
    assert (ROOT / ".gitignore").read_text().count(".tools/") == 1


def test_entrypoint_baseline_flag_is_perfgate_run_baseline(greeter, tmp_path):
    """`python entrypoint.py --baseline` (the README's second form) records a baseline."""
    config = write_config(tmp_path, base_config(greeter.address, load={"repetitions": 1, "warmup_s": 0}))
    done = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), "--baseline", "--config", str(config),  # noqa: S603
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GITHUB_ACTIONS": ""})
    assert done.returncode == EXIT_PASS, done.stderr
    assert load_record(tmp_path / "out" / "baseline").role == "baseline"


def test_progress_is_a_live_line_on_a_terminal():
    stream = io.StringIO()
    progress = Progress(steps=2, step_seconds=0.6, stream=stream, live=True)
    progress.begin("repetition 1/2")
    time.sleep(0.7)  # let the ticker draw at least once
    progress.end("ok")
    text = stream.getvalue()
    assert "\r\x1b[2Kperfgate: repetition 1/2 [" in text and "s left" in text
    assert text.rstrip().endswith("perfgate: repetition 1/2 done: ok")


def test_missing_collectors_degrade_unless_required(greeter, tmp_path, capsys, monkeypatch):
    """No bpftrace on PATH and a pprof URL that answers 404: noted in the record, the run goes on;
    with kernel.required / cpu.required the same is exit 3."""
    monkeypatch.setenv("PATH", str(TOOLS_BIN))
    config = base_config(greeter.address, pprof_url=f"{greeter.pprof_url}/nothing-here", kernel={"enabled": True},
                         load={"repetitions": 1, "warmup_s": 0})
    assert run(tmp_path, config) == EXIT_PASS
    rep = load_record(tmp_path / "out" / "candidate").repetitions[0]
    assert rep.runq.status == "unavailable" and rep.runq.reason.startswith("kernel view unavailable: ")
    assert "bpftrace" in rep.runq.reason
    assert rep.cpu.status == "unavailable" and rep.cpu.reason.startswith("cpu profile unavailable: ")
    assert "404" in rep.cpu.reason

    for required in ({"kernel": {"enabled": True, "required": True}}, {"cpu": {"pprof_url": config["cpu"]["pprof_url"],
                                                                               "required": True}}):
        capsys.readouterr()
        strict = {**config, **required}
        folder = tmp_path / next(iter(required))
        folder.mkdir()
        assert run(folder, strict) == EXIT_TOOL
        assert "unavailable" in capsys.readouterr().err


def test_a_baseline_run_imports_no_statistics_plotting_or_github(greeter, tmp_path):
    """Measuring alone needs none of the gate's libraries (commands.run imports them only to compare)."""
    config = base_config(greeter.address, pprof_url=greeter.pprof_url, load={"repetitions": 2})
    result = imports_of(["run", "--baseline", "--config", str(write_config(tmp_path, config)), "--out",
                         str(tmp_path / "out")], tmp_path, timeout_s=300)
    assert result["code"] == EXIT_PASS, result["stderr"]
    assert not {"scipy", "matplotlib", "github"} & set(result["modules"])
