"""The layers below the CPU through the whole gate on the real greeter: a candidate with each knob on
(an allocation in main.allocBallast, a lock held in main.greetingPrefix, goroutines leaked from
main.leakWatcher) against the plain service; the verdict compares each layer, names each knob's function
first among its layer's risers, and the report shows every layer; a side without a layer says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.greeter import base_config, write_config

from perfgate.cli import main
from perfgate.report.pushgateway import exposition
from perfgate.verdict import Verdict

pytestmark = pytest.mark.slow
# The held lock spans two of ghz's evenly paced arrivals (2.5 ms apart at 400/s): contention on any machine,
# not only when a loaded one bunches the calls.
KNOBS = ("-regress-alloc-bytes", "65536", "-regress-lock-hold", "5ms", "-regress-lock-every", "10",
         "-regress-leak-every", "40")
# A short test window: every contention event recorded (the greeter's default samples 1 in 10).
EVERY_EVENT = ("-mutex-profile-fraction", "1")


def record(tmp_path: Path, greeter, name: str) -> Path:
    config = base_config(greeter.address, pprof_url=greeter.pprof_url,
                         load={"repetitions": 3, "duration_s": 2, "rps": 400})
    out = tmp_path / name
    assert main(["run", "--baseline", "--config", str(write_config(tmp_path, config)), "--out", str(out)]) == 0
    return out / "baseline"


def compare(tmp_path: Path, base: Path, cand: Path) -> Verdict:
    out = tmp_path / "verdict"
    main(["compare", "--baseline", str(base), "--candidate", str(cand), "--out", str(out),
          "--set", "report.plots=false", "--set", "compare.run_noise_pct=5"])
    return Verdict.load(out)


def test_each_knob_is_named_first_in_its_layer(start_greeter, tmp_path):
    base = record(tmp_path, start_greeter(*EVERY_EVENT), "base")
    cand = record(tmp_path, start_greeter(*KNOBS, *EVERY_EVENT), "cand")
    verdict = compare(tmp_path, base, cand)
    views = {view.layer: view for view in verdict.layers}
    assert list(views) == ["allocs", "mutex", "block", "goroutines"]
    expected = {"allocs": "main.allocBallast", "mutex": "main.greetingPrefix", "block": "main.greetingPrefix",
                "goroutines": "main.leakWatcher"}
    for layer, function in expected.items():
        view = views[layer]
        assert view.available, view.reason
        assert view.risers and view.risers[0].function == function, (layer, [m.function for m in view.risers[:3]])
    assert views["allocs"].unit == "B" and views["mutex"].unit == "µs" and views["goroutines"].unit == "goroutines"
    assert {view.alpha for view in views.values()} == {0.05 / 4}  # the four layers share the gate's alpha
    allocated = views["allocs"].risers[0]
    assert 0.8 * 65536 < allocated.change < 1.25 * 65536  # the ballast per request, from 1-in-512-kB samples
    metrics = {m.name: m for m in verdict.metrics}
    for name in ("alloc_bytes_per_request", "mutex_delay_per_request", "goroutine_growth", "goroutines"):
        assert metrics[name].candidate_median > metrics[name].baseline_median, name
    report = (tmp_path / "verdict" / "report.md").read_text()
    for text in ("Below the CPU", "<strong>Allocations</strong>", "<strong>Lock contention (mutex)</strong>",
                 "<strong>Blocking</strong>", "<strong>Goroutines</strong>", "<code>main.allocBallast</code>",
                 "<code>main.leakWatcher</code>", "alloc&#95;bytes&#95;per&#95;request", "significant below 0.0125"):
        assert text in report, text
    assert "main.greetingPrefix" in (tmp_path / "verdict" / "report.html").read_text()
    exported = exposition(verdict)
    for stem in ("alloc_bytes_per_request", "mutex_delay_seconds_per_request", "goroutines_gained_per_window"):
        assert f"perfgate_candidate_{stem} " in exported, stem
    assert 'perfgate_metric_p_value{metric="goroutine_growth"}' in exported


def test_a_layer_one_side_lacks_is_a_note_not_a_zero(start_greeter, tmp_path):
    base = record(tmp_path, start_greeter("-mutex-profile-fraction", "0"), "base")
    cand = record(tmp_path, start_greeter(), "cand")
    verdict = compare(tmp_path, base, cand)
    mutex = next(view for view in verdict.layers if view.layer == "mutex")
    assert not mutex.available
    assert mutex.reason.startswith("baseline: mutex profile unavailable: mutex profiling is off in the service")
    assert "mutex_delay_per_request" not in {m.name for m in verdict.metrics}
    assert any("mutex profiling is off" in note for note in verdict.notes)
    assert "Lock contention (mutex) not compared: baseline: mutex profile unavailable" in \
        (tmp_path / "verdict" / "report.md").read_text()
    assert json.loads((tmp_path / "verdict" / "verdict.json").read_text())["layers"]
