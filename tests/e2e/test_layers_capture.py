"""capture/layers.py against the real greeter: delta allocation, mutex and block profiles fetched
during real ghz load with each knob on, goroutine snapshots of a leaking service, profiling rates of 0
told apart from "nothing happened", and endpoints that answer wrongly."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.greeter import CALL
from support.loopback import QuietHandler, serving
from support.paths import GHZ, TEST_DATA

from perfgate.capture.layers import (
    ALLOCS,
    BLOCK,
    CONNECTION_READER,
    DELTA_KINDS,
    GOROUTINE,
    MUTEX,
    LayerKind,
    fetch_delta,
    fetch_snapshot,
    goroutine_starts,
    mutex_sampling_period,
    parse_layer,
    summarize,
)
from perfgate.capture.pprof import ProfileUnavailable

CPU_FIXTURE = TEST_DATA / "pprof" / "greeter-base-1.pb.gz"
LEAK_EVERY = 50
# the hold spans four of ghz's evenly paced arrivals (1.25 ms apart at 800/s): a 1 ms hold met waiters only when
# a loaded machine bunched the calls (examples/greeter/README.md)
KNOBS = ("-regress-alloc-bytes", "65536", "-regress-lock-hold", "5ms", "-regress-lock-every", "10",
         "-regress-leak-every", str(LEAK_EVERY))
EVERY_EVENT = ("-mutex-profile-fraction", "1", "-block-profile-rate", "1")  # a short test window sees enough


def deltas_under_load(greeter, seconds: int = 1) -> tuple[dict[str, bytes], int]:
    """Every delta profile of `seconds` fetched at once while ghz loads the greeter; and the calls ghz made."""
    ghz = subprocess.Popen([str(GHZ), "--insecure", "--call", CALL, "-d", '{"name":"x"}', "-z", f"{seconds + 1}s",  # noqa: S603
                            "-c", "4", "--rps", "800", "--duration-stop", "wait", "-O", "json", greeter.address],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        with ThreadPoolExecutor(max_workers=len(DELTA_KINDS)) as pool:
            futures = {name: pool.submit(fetch_delta, greeter.pprof_url, kind, seconds)
                       for name, kind in DELTA_KINDS.items()}
            bodies = {name: future.result() for name, future in futures.items()}
    finally:
        report, _ = ghz.communicate(timeout=30)
    return bodies, json.loads(report)["count"]


def test_each_knob_shows_in_its_layer_named_by_its_function(start_greeter) -> None:
    greeter = start_greeter(*KNOBS, *EVERY_EVENT)
    bodies, calls = deltas_under_load(greeter)
    allocs = parse_layer(bodies["allocs"], ALLOCS)
    assert allocs.unit == "bytes" and allocs.functions["main.allocBallast"].flat > 0.25 * allocs.total
    for kind in (MUTEX, BLOCK):
        profile = parse_layer(bodies[kind.name], kind)
        assert profile.unit == "nanoseconds", kind.name
        assert profile.functions["main.greetingPrefix"].cum > 0, (kind.name, calls, dict(profile.functions))
        assert not any(name.startswith(("net/http/pprof.", "runtime/pprof.")) for name in profile.functions)
    for name, body in bodies.items():
        summary = summarize(body, DELTA_KINDS[name])
        assert set(summary.totals) == set(DELTA_KINDS[name].sample_types)
        assert all(total > 0 for total in summary.totals.values()), (name, summary)
        assert summary.duration_ns > 0.9e9 and not summary.rate_off, (name, summary)
    goroutines = parse_layer(fetch_snapshot(greeter.pprof_url), GOROUTINE)
    leaked = sum(weight for stack, weight in goroutines.stacks.items() if stack[0] == "main.leakWatcher")
    assert leaked == calls // LEAK_EVERY and goroutines.total > leaked  # and the server's own goroutines


def test_a_snapshot_leaves_out_perfgates_requests_in_flight(start_greeter) -> None:
    """Snapshots taken while a delta profile is still being served: the raw profile holds net/http's connection
    readers beside the requests in flight (the delta's and the snapshot's own; Go shows one or both); the
    goroutines counted hold none of them, beside a delta or alone. (Whole counts are not compared: a connection
    just closed, perfgate's or the readiness probe's, can keep its server goroutine for a moment.)"""
    greeter = start_greeter()
    alone = goroutine_starts(fetch_snapshot(greeter.pprof_url))
    readers = 0
    for kind in (BLOCK, ALLOCS, MUTEX):
        with ThreadPoolExecutor(max_workers=1) as pool:
            delta = pool.submit(fetch_delta, greeter.pprof_url, kind, 1)
            time.sleep(0.5)
            raw = fetch_snapshot(greeter.pprof_url)
            delta.result()
        readers += sum(weight for stack, weight in parse_layer(raw, GOROUTINE).stacks.items()
                       if stack[0] == CONNECTION_READER)
        assert CONNECTION_READER not in goroutine_starts(raw), kind.name
    assert CONNECTION_READER not in alone
    assert readers >= 1, "no connection reader in any raw snapshot: nothing here tested what is left out"


def test_rates_of_zero_are_told_apart_from_no_contention(start_greeter) -> None:
    greeter = start_greeter(*KNOBS, "-mutex-profile-fraction", "0", "-block-profile-rate", "0")
    bodies, _ = deltas_under_load(greeter)
    assert summarize(bodies["block"], BLOCK).rate_off
    assert summarize(bodies["mutex"], MUTEX).totals == {"contentions": 0, "delay": 0}
    assert mutex_sampling_period(greeter.pprof_url) == 0


def test_quiet_service_with_rates_on_has_zero_contention_and_says_its_rate(greeter) -> None:
    """No load: nothing contends, yet the block profile holds perfgate's own wait, so the rate is known to be on."""
    block = summarize(fetch_delta(greeter.pprof_url, BLOCK, 1), BLOCK)
    assert not block.rate_off and block.totals["delay"] < 0.1e9  # the 1 s wait itself is left out
    assert mutex_sampling_period(greeter.pprof_url) == 10


def test_unknown_profile_is_a_404_naming_the_url(greeter) -> None:
    with pytest.raises(ProfileUnavailable) as caught:
        fetch_delta(greeter.pprof_url, LayerKind("nosuch", ("x",), delta=True), 1)
    url = f"{greeter.pprof_url}/debug/pprof/nosuch"
    assert caught.value.message == f"nosuch profile unavailable: {url} returned 404: Unknown profile"


def answering(body: bytes) -> contextlib.AbstractContextManager[str]:
    """An HTTP server answering every GET with `body`: a pprof endpoint that ignores what it is asked."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
            self.send_body(200, body, content_type=None)

    return serving(Handler)


def test_a_body_of_the_wrong_kind_is_refused() -> None:
    """A CPU profile where an allocation profile should be: the sample types say so."""
    with answering(CPU_FIXTURE.read_bytes()) as url, pytest.raises(ProfileUnavailable) as caught:
        fetch_snapshot(url, ALLOCS)
    assert caught.value.message.startswith("allocs profile unavailable: ")
    assert caught.value.reason.endswith("returned a profile without alloc_objects, alloc_space (it has cpu, samples)")


def test_a_cumulative_profile_where_a_delta_was_asked_for_is_refused(greeter) -> None:
    """What a net/http/pprof that ignores ?seconds= sends: the profile since the process started."""
    with answering(fetch_snapshot(greeter.pprof_url, ALLOCS)) as url, pytest.raises(ProfileUnavailable) as caught:
        fetch_delta(url, ALLOCS, 1)
    assert "returned the cumulative profile, not the difference over the window" in caught.value.reason
