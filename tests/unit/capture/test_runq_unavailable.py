"""Each way the kernel view can be unavailable ends in one clear RunqUnavailable message, no traceback."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.runq import python_for, requires_root, run_collector_driver

from perfgate.capture.runq import RunqCollector, RunqUnavailable
from perfgate.errors import EXIT_TOOL, PerfgateError

PREFIX = "kernel view unavailable: "


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user can write to (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="perfgate-runq-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def assert_clean_failure(completed, expected: str) -> None:
    output = completed.stdout + completed.stderr
    assert "Traceback" not in output, output
    assert completed.returncode == EXIT_TOOL, output
    assert completed.stdout.startswith(PREFIX), output
    assert expected in completed.stdout, output


def test_bpftrace_not_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    collector = RunqCollector(service_comm="greeter", raw_path=tmp_path / "raw.jsonl")
    with pytest.raises(RunqUnavailable) as caught:
        collector.start()
    error = caught.value
    assert isinstance(error, PerfgateError) and error.exit_code == EXIT_TOOL
    assert str(error).startswith(PREFIX + "bpftrace not found ('bpftrace' is not an executable on PATH)")
    assert "apt-get install bpftrace" in str(error)
    assert collector.pid is None


@requires_root
def test_unprivileged_user_gets_the_message(shared_folder):
    wrapper = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    python = python_for(wrapper)
    if python is None:
        pytest.skip("no Python interpreter the nobody user can run")
    completed = run_collector_driver(wrapper, python, shared_folder)
    assert_clean_failure(completed, "perfgate is not running as root")
    assert "sudo" in completed.stdout


@requires_root
def test_root_without_bpf_capabilities(shared_folder):
    if shutil.which("capsh") is None:
        pytest.skip("capsh (libcap2-bin) is not installed")
    wrapper = ["capsh", "--drop=cap_sys_admin,cap_bpf,cap_perfmon", "--", "-c", 'exec "$@"', "sh"]
    completed = run_collector_driver(wrapper, python_for(wrapper) or "python3", shared_folder)
    assert_clean_failure(completed, "without CAP_SYS_ADMIN or CAP_BPF+CAP_PERFMON")


def private_mounts(*commands: str) -> list[str]:
    """Run in a private mount namespace: the unmounts there are invisible to the rest of the machine."""
    script = "; ".join(commands) + '; exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


@requires_root
def test_tracefs_not_mounted(shared_folder):
    wrapper = private_mounts("umount -l /sys/kernel/tracing 2>/dev/null",
                             "umount -l /sys/kernel/debug 2>/dev/null",
                             "[ ! -d /sys/kernel/tracing/events ] || exit 99")
    completed = run_collector_driver(wrapper, python_for(wrapper) or "python3", shared_folder)
    if completed.returncode == 99:
        pytest.skip("tracefs could not be unmounted in a private mount namespace here")
    assert_clean_failure(completed, "tracefs is not mounted")
    assert "mount -t tracefs nodev /sys/kernel/tracing" in completed.stdout
    assert os.path.isdir("/sys/kernel/tracing/events")  # the machine's own mount is untouched


@requires_root
def test_kernel_without_btf(shared_folder):
    wrapper = private_mounts("mount -t tmpfs none /sys/kernel/btf",
                             "[ ! -e /sys/kernel/btf/vmlinux ] || exit 99")
    completed = run_collector_driver(wrapper, python_for(wrapper) or "python3", shared_folder)
    if completed.returncode == 99:
        pytest.skip("/sys/kernel/btf could not be hidden in a private mount namespace here")
    assert_clean_failure(completed, "the kernel has no BTF")
    assert os.path.exists("/sys/kernel/btf/vmlinux")


@requires_root
def test_probe_attach_failure_names_bpftrace_error(tmp_path):
    broken = tmp_path / "broken.bt"
    broken.write_text("tracepoint:sched:perfgate_no_such_tracepoint { @n = count(); }\n", encoding="utf-8")
    collector = RunqCollector(service_comm=None, raw_path=tmp_path / "raw.jsonl", script=broken)
    with pytest.raises(RunqUnavailable) as caught:
        collector.start(timeout_s=30)
    message = str(caught.value)
    assert message.startswith(PREFIX + "bpftrace could not attach runqlat.bt's probes (exited with 1)")
    assert "tracepoint not found: sched:perfgate_no_such_tracepoint" in message
    assert "RLIMIT_MEMLOCK" not in message
    assert collector.returncode == 1  # reaped


def test_too_many_pids_is_a_config_error(tmp_path):
    from perfgate.errors import ConfigError

    with pytest.raises(ConfigError, match="at most 8 pids"):
        RunqCollector(service_comm=None, service_pids=list(range(1, 10)), raw_path=tmp_path / "raw.jsonl")
