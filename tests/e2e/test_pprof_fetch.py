"""fetch_cpu_profile against the real greeter's net/http/pprof, and against an HTTP server that
answers the ways a broken endpoint does (junk, truncated gzip, too slow)."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.greeter import free_port
from support.loopback import QuietHandler, serving
from support.paths import GHZ, TEST_DATA

from perfgate.capture.pprof import ProfileUnavailable, default_fetch_timeout_s, fetch_cpu_profile, profile_url
from perfgate.config import load_config
from perfgate.errors import EXIT_TOOL
from perfgate.load.ghz import Ghz
from perfgate.measure.probe_profile import ProbeProfiler
from perfgate.measure.session import Session, new_session
from perfgate.profile.parse import parse_profile
from perfgate.progress import Progress
from perfgate.record import load_record

FIXTURE = TEST_DATA / "pprof" / "greeter-base-1.pb.gz"


def test_fetches_a_profile_that_parses(greeter) -> None:
    body = fetch_cpu_profile(greeter.pprof_url, 1)
    assert body[:2] == b"\x1f\x8b"
    profile = parse_profile(body)
    assert profile.sample_type == "cpu" and 0.9e9 < profile.duration_ns < 2e9


def test_second_request_while_profiling_is_the_go_500(greeter) -> None:
    first: dict[str, bytes] = {}
    thread = threading.Thread(target=lambda: first.setdefault("body", fetch_cpu_profile(greeter.pprof_url, 2)))
    thread.start()
    try:
        time.sleep(0.5)
        with pytest.raises(ProfileUnavailable) as caught:
            fetch_cpu_profile(greeter.pprof_url, 1)
    finally:
        thread.join(timeout=15)
    url = f"{greeter.pprof_url}/debug/pprof/profile"
    assert caught.value.message == (f"cpu profile unavailable: {url} returned 500: "
                                    "Could not enable CPU profiling: cpu profiling already in use")
    assert caught.value.exit_code == EXIT_TOOL
    assert parse_profile(first["body"]).total >= 0  # the first request was not disturbed


def test_wrong_path_is_a_404(greeter) -> None:
    with pytest.raises(ProfileUnavailable) as caught:
        fetch_cpu_profile(greeter.pprof_url + "/elsewhere", 1)
    assert caught.value.reason == (f"{greeter.pprof_url}/elsewhere/debug/pprof/profile returned 404: "
                                   "404 page not found")


def test_nothing_listening() -> None:
    port = free_port()
    with pytest.raises(ProfileUnavailable) as caught:
        fetch_cpu_profile(f"http://127.0.0.1:{port}", 1)
    assert caught.value.message == (f"cpu profile unavailable: cannot connect to "
                                    f"http://127.0.0.1:{port}/debug/pprof/profile: Connection refused")


class _Canned(QuietHandler):
    """Answers /<name>/debug/pprof/profile with the canned reply <name>."""

    replies: dict[str, tuple[int, bytes, float]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
        status, body, delay_s = self.replies[self.path.split("/")[1]]
        time.sleep(delay_s)
        self.send_body(status, body)


@pytest.fixture
def canned() -> Iterator[str]:
    data = FIXTURE.read_bytes()
    _Canned.replies = {
        "junk": (200, b"<html>hello</html>", 0.0),
        "truncated": (200, data[: len(data) // 2], 0.0),
        "gzipjunk": (200, gzip.compress(b"not a profile" * 50), 0.0),
        "empty": (200, b"", 0.0),
        "slow": (200, data, 3.0),
        "ok": (200, data, 0.0),
    }
    with serving(_Canned) as url:
        yield url


@pytest.mark.parametrize(("name", "problem"), [
    ("junk", "not a pprof profile"),
    ("truncated", "truncated gzip data"),
    ("gzipjunk", "not a pprof profile"),
    ("empty", "the file is empty"),
])
def test_bodies_that_are_not_profiles(canned: str, name: str, problem: str) -> None:
    with pytest.raises(ProfileUnavailable) as caught:
        fetch_cpu_profile(f"{canned}/{name}", 1)
    reason = caught.value.reason
    assert reason.startswith(f"{canned}/{name}/debug/pprof/profile returned a body that is not a CPU profile: ")
    assert problem in reason


def test_a_server_slower_than_the_timeout(canned: str) -> None:
    """The server answers after 3 s; waiting for it would have returned the profile."""
    with pytest.raises(ProfileUnavailable) as caught:
        fetch_cpu_profile(f"{canned}/slow", 1, timeout_s=1.5)
    assert "sent no complete profile within 1.5 s" in caught.value.reason


def test_canned_profile_is_returned_as_is(canned: str) -> None:
    assert fetch_cpu_profile(f"{canned}/ok/", 1) == FIXTURE.read_bytes()


def test_arguments_and_urls() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            fetch_cpu_profile("http://127.0.0.1:1", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fetch_cpu_profile("http://127.0.0.1:1", 5, timeout_s=5)
    assert profile_url("http://h:6060") == "http://h:6060/debug/pprof/profile"
    assert profile_url("http://h:6060/") == "http://h:6060/debug/pprof/profile"
    assert profile_url("http://h:6060/debug/pprof") == "http://h:6060/debug/pprof/profile"
    assert profile_url("http://h:6060/debug/pprof/profile/") == "http://h:6060/debug/pprof/profile"
    assert default_fetch_timeout_s(2) == 7.0 and default_fetch_timeout_s(30) == 45.0


def probe_session(tmp_path: Path, greeter) -> Session:
    config = load_config(None, environ={}, set_args=[f"target.address={greeter.address}", "target.call=a.B/C"])
    return new_session(config, tmp_path / "out" / "baseline", role="baseline", generator=Ghz(str(GHZ)),
                       progress=Progress(steps=1, step_seconds=1))


@pytest.mark.parametrize(("probe_s", "status"), [(0.3, "ok"), (1.4, "unavailable")])
def test_a_probe_profile_counts_only_when_it_spanned_its_probes(tmp_path, greeter, probe_s, status) -> None:
    """measure/probe_profile.py against the real greeter: a 1 s profile over two probes of 0.3 s is kept; one
    whose probe outlasted it is in the record, marked unavailable, and says so."""
    session = probe_session(tmp_path, greeter)
    profiler = ProbeProfiler(session, greeter.pprof_url, phase="pair")
    for index in (1, 2):
        profiler.before_probe(1)
        time.sleep(probe_s / 2)  # the build's probe: only its timing matters to the profiler
        profiler.after_probe(index)
    profiler.finish()
    (entry,) = load_record(session.folder).probe_profiles
    assert (entry.phase, entry.probes, entry.cpu.status) == ("pair", (1, 2), status), entry
    assert (session.folder / entry.cpu.file).is_file()
    if status == "unavailable":
        assert "did not span probes 1, 2; not counted" in entry.cpu.reason
