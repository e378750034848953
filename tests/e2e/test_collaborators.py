"""Slow or broken collaborators: a pprof endpoint that trickles, ghz outliving a killed perfgate, an output
folder that cannot be written, a service that dies mid-run. Each ends bounded, with the true reason."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.greeter import base_config, free_port, greeter_argv, write_config
from support.hostile_records import write_record
from support.loopback import QuietHandler, serving
from support.paths import GHZ, ROOT
from support.processes import pids_where

from perfgate.capture.pprof import ProfileUnavailable, fetch_cpu_profile
from perfgate.cli import main
from perfgate.errors import EXIT_TOOL, PerfgateError, ToolError
from perfgate.load.ghz import Ghz


class _Trickle(QuietHandler):
    """Headers at once, then one byte every 0.2 s of a body that never ends (for 60 s at most); `hung_up` is set
    when the client closed the connection before that."""

    hung_up = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(10**6))
        self.end_headers()
        try:
            for _ in range(300):
                self.wfile.write(b"\x1f")
                self.wfile.flush()
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            self.hung_up.set()


@pytest.fixture
def trickle() -> Iterator[str]:
    with serving(_Trickle) as url:
        yield url


@pytest.mark.timeout(30)
def test_a_trickling_pprof_endpoint_is_cut_at_one_overall_deadline(trickle: str) -> None:
    _Trickle.hung_up.clear()
    with pytest.raises(ProfileUnavailable) as caught:
        fetch_cpu_profile(trickle, 1, timeout_s=2.0)
    assert "sent no complete profile within 2.0 s" in caught.value.reason
    # perfgate hung up while the server was still sending (it would for 60 s): the deadline, not the body's end
    assert _Trickle.hung_up.wait(timeout=5)


@pytest.mark.timeout(60)
def test_the_record_says_why_the_trickled_profile_is_missing(greeter, trickle: str, tmp_path: Path) -> None:
    config = base_config(greeter.address, pprof_url=trickle, load={"duration_s": 2.0, "warmup_s": 0, "repetitions": 1},
                         output=str(tmp_path / "out"))
    assert main(["run", "--baseline", "--config", str(write_config(tmp_path, config))]) == 0
    [rep] = json.loads((tmp_path / "out" / "baseline" / "record.json").read_text())["repetitions"]
    assert rep["cpu"]["status"] == "unavailable"
    assert "sent no complete profile within" in rep["cpu"]["reason"] and "set cpu.pprof_url" not in rep["cpu"]["reason"]


def _ghz_pids(marker: str) -> set[int]:
    return pids_where(lambda proc: marker.encode() in (proc / "cmdline").read_bytes()
                      and (proc / "exe").resolve() == GHZ.resolve())


@pytest.mark.timeout(90)
def test_ghz_dies_with_a_sigkilled_perfgate(greeter, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = base_config(greeter.address, load={"duration_s": 30.0, "warmup_s": 0, "repetitions": 1}, output=str(out))
    process = subprocess.Popen([sys.executable, "-m", "perfgate", "run", "--baseline",  # noqa: S603
                                "--config", str(write_config(tmp_path, config))], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _ghz_pids(str(out)):
            time.sleep(0.1)
        started = _ghz_pids(str(out))
        assert started, "perfgate's ghz did not start"
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and started & _ghz_pids(str(out)):
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    left = started & _ghz_pids(str(out))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "ghz outlived a killed perfgate"


@pytest.mark.timeout(60)
def test_a_read_only_output_folder_is_a_clear_exit_3(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount the output folder read-only")
    base = write_record(tmp_path / "base", "baseline", [{"main.a": 10**8}] * 3)
    cand = write_record(tmp_path / "cand", "candidate", [{"main.a": 10**8}] * 3)
    out = tmp_path / "out"
    out.mkdir()
    script = (f'mount -o bind,ro "{out}" "{out}" && exec "{sys.executable}" -m perfgate compare '
              f'--baseline "{base}" --candidate "{cand}" --out "{out}"')
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,  # noqa: S603 S607
                          timeout=60, check=False, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    if "mount" in done.stderr and done.returncode not in (0, 1, 2, 3, 4):
        pytest.skip(f"cannot mount a read-only folder here: {done.stderr.strip()}")
    assert done.returncode == EXIT_TOOL, done.stderr
    assert str(out) in done.stderr and "Read-only file system (EROFS)" in done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_a_failing_save_does_not_mask_the_first_error(tmp_path: Path) -> None:
    from perfgate.config import load_config
    from perfgate.measure.session import failure_recorded, new_session
    from perfgate.progress import Progress

    config = load_config(None, environ={}, set_args=["target.address=127.0.0.1:1", "target.call=a.B/C"])
    folder = tmp_path / "out" / "baseline"
    session = new_session(config, folder, role="baseline", generator=Ghz(str(GHZ)),
                          progress=Progress(steps=1, step_seconds=1))
    shutil.rmtree(folder)
    folder.write_text("the folder is gone: saving now fails")  # as a full or vanished disk would
    with pytest.raises(PerfgateError) as caught, failure_recorded(session):
        raise ToolError("ghz failed against 127.0.0.1:1 (exit 1): connection refused")
    message = str(caught.value)
    assert message.startswith("ghz failed against 127.0.0.1:1")  # the first error stays the error
    assert f"the record could not be saved: cannot write the output folder {folder}" in message


@pytest.mark.timeout(90)
def test_a_service_that_dies_mid_run_is_named_as_the_cause(tmp_path: Path, capsys) -> None:
    grpc, pprof = free_port(), free_port()
    command = ["timeout", "-s", "KILL", "3", *greeter_argv(grpc, pprof)]  # the service is killed after 3 s
    config = base_config(f"127.0.0.1:{grpc}", service={"command": command},
                         load={"duration_s": 1.5, "warmup_s": 0, "repetitions": 5}, output=str(tmp_path / "out"))
    assert main(["run", "--baseline", "--config", str(write_config(tmp_path, config))]) == EXIT_TOOL
    err = capsys.readouterr().err
    assert "the service exited with -9 (killed by SIGKILL) during the run" in err and "service.log" in err
    assert "set service.command" not in err and "start the service" not in err
