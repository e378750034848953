"""Run-to-run noise (compare/runs.py): the run-level test, its wiring in the gate, and --history on the CLI."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as scipy_stats
from support.records import ENV, record

from perfgate.compare.classify import classify
from perfgate.compare.comparison import Cause, MetricComparison
from perfgate.compare.inputs import load_inputs
from perfgate.compare.runs import configured_noise, estimate_noise, run_level_test, with_run_level
from perfgate.compare.stats import compare_metric
from perfgate.config import load_config
from perfgate.errors import BaselineError
from perfgate.gate import decide
from perfgate.verdict import Verdict

CPU_RULE = [{"metric": "cpu_per_request", "max_increase_pct": 3}]


def test_estimated_noise_gives_a_t_prediction_interval_test():
    medians = [100.0, 95.0, 106.0, 102.0, 100.0]
    noise = estimate_noise(medians)
    test = run_level_test(medians, 108.0, noise, higher_is_worse=True, per_test_alpha=0.05, alpha=0.05)
    logs = np.log(medians)
    se = logs.std(ddof=1) * math.sqrt(1 + 1 / len(logs))
    t = (math.log(108.0) - logs.mean()) / se
    assert test.p_value == pytest.approx(scipy_stats.t.sf(t, df=4))
    assert test.df == 4 and test.runs == 5
    half = scipy_stats.t.ppf(0.95, 4) * se  # alpha in each tail, like the within-run interval
    assert test.rel_ci == pytest.approx((math.expm1(t * se - half), math.expm1(t * se + half)))
    assert test.worse_bound_rel == pytest.approx(test.rel_ci[1])
    assert test.mde_rel == pytest.approx(math.expm1((scipy_stats.t.ppf(0.95, 4) + scipy_stats.t.ppf(0.8, 4)) * se))


def test_configured_noise_compares_two_runs_with_the_normal():
    noise = configured_noise(5)
    test = run_level_test([100.0], 110.0, noise, higher_is_worse=True, per_test_alpha=0.05, alpha=0.05)
    se = math.log(1.05) * math.sqrt(2)
    assert test.df is None
    assert test.p_value == pytest.approx(scipy_stats.norm.sf(math.log(1.1) / se))
    lower = run_level_test([100.0], 110.0, noise, higher_is_worse=False, per_test_alpha=0.05, alpha=0.05)
    assert lower.p_value == pytest.approx(1 - test.p_value)  # rps: higher is better
    # a drop's bound and MDE are drops: below 100 % however noisy the runs
    assert lower.worse_bound_rel == pytest.approx(-lower.rel_ci[0])
    wild = run_level_test([100.0], 30.0, configured_noise(80), higher_is_worse=False, per_test_alpha=0.01,
                          alpha=0.05)
    assert 0.7 < wild.worse_bound_rel < 1 and 0 < wild.mde_rel < 1


def test_noise_needs_three_positive_run_medians():
    assert estimate_noise([100.0, 101.0]) is None
    assert estimate_noise([100.0, 101.0, 0.0]) is None
    assert estimate_noise([100.0, 101.0, 99.0]).df == 2
    assert configured_noise(None) is None and configured_noise(0) is None


def test_with_run_level_keeps_the_larger_p_and_the_wider_bound_ci_and_mde():
    within = compare_metric("cpu", [100, 101, 99, 100.5, 100.2, 99.8], [108, 109, 107, 108.5, 108.1, 107.9],
                            higher_is_worse=True, unit="us")
    test = run_level_test([100.0, 95.0, 106.0, 102.0, 100.1], 108.0, estimate_noise([100.0, 95.0, 106.0, 102.0,
                                                                                       100.1]),
                          higher_is_worse=True, per_test_alpha=0.05, alpha=0.05)
    both = with_run_level(within, test)
    assert both.p_value == max(within.p_value, test.p_value) == test.p_value
    assert both.worse_bound_rel == test.worse_bound_rel > within.worse_bound_rel
    assert both.mde_rel == test.mde_rel > within.mde_rel
    assert both.rel_ci[0] <= within.rel_ci[0] and both.rel_ci[1] >= within.rel_ci[1]
    assert classify(within, p_adjusted=within.p_value, max_worse_rel=0.03).outcome == "FAIL"
    verdict = classify(both, p_adjusted=both.p_value, max_worse_rel=0.03)
    assert verdict.outcome == "INCONCLUSIVE"
    assert "another run" in verdict.reason and "interleaved" in verdict.reason
    assert MetricComparison.from_dict(both.to_dict()) == both


def _runs(rng: np.random.Generator, n_runs: int, shift: float, *, run_sd: float, within_cv: float,
          reps: int) -> list[list[float]]:
    """Runs of one build: each run's level drifts (lognormal, run_sd), its repetitions scatter around it."""
    levels = 100.0 * (1 + shift) * np.exp(rng.normal(0, run_sd, n_runs))
    return [list(level * np.exp(rng.normal(0, within_cv, reps))) for level in levels]


def _outcome(runs_base: list[list[float]], cand: list[float], *, use_history: bool) -> str:
    base = runs_base[-1]
    within = compare_metric("cpu", base, cand, higher_is_worse=True, unit="us")
    comparison = within
    if use_history:
        medians = [statistics.median(r) for r in runs_base]
        test = run_level_test(medians, statistics.median(cand), estimate_noise(medians), higher_is_worse=True,
                              per_test_alpha=0.05, alpha=0.05)
        comparison = with_run_level(within, test)
    return classify(comparison, p_adjusted=comparison.p_value, max_worse_rel=0.03).outcome


def test_seeded_a_a_with_run_drift_fails_without_history_and_not_with_it():
    """200 seeded A/A gates on a runner whose runs drift by 6 % (repetitions within a run: 2 %), 5 baseline runs."""
    rng = np.random.default_rng(20261126)
    without, with_history = 0, 0
    for _ in range(200):
        runs = _runs(rng, 6, 0.0, run_sd=0.06, within_cv=0.02, reps=6)
        without += _outcome(runs[:5], runs[5], use_history=False) == "FAIL"
        with_history += _outcome(runs[:5], runs[5], use_history=True) == "FAIL"
    assert without >= 40  # the within-run test alone mistakes drift for regressions
    # the run-level test holds its level: at most alpha (5 %, 10 of 200) plus binomial slack
    assert with_history <= 18


def test_seeded_large_regression_is_still_detected_through_the_drift():
    rng = np.random.default_rng(7)
    detected = 0
    for _ in range(200):
        base_runs = _runs(rng, 5, 0.0, run_sd=0.03, within_cv=0.02, reps=6)
        cand = _runs(rng, 1, 0.30, run_sd=0.03, within_cv=0.02, reps=6)[0]
        detected += _outcome(base_runs, cand, use_history=True) == "FAIL"
    assert detected >= 190  # >= 95 %


# ---------------------------------------------------------------- the gate
def _cpu_record(role: str, cpu_us: list[float], *, created_at: str, digest: str = "d", env=ENV):
    return replace(record(role, [10.0] * len(cpu_us), cpu_us=cpu_us, env=env), created_at=created_at,
                   config_digest=digest)


def _gate(baseline, candidate, history=(), *settings: str) -> Verdict:
    config = load_config(None, environ={}, set_args=[f"gates={CPU_RULE}", *settings], require_target=False)
    return decide(load_inputs(baseline, candidate, tuple(history)), config, created_at="now")


TIGHT = [100.0, 100.4, 99.7, 100.2, 99.9, 100.1]
HISTORY_LEVELS = (93.0, 106.0, 97.0, 104.0)


def _history(**kwargs):
    return [_cpu_record("baseline", [v * level / 100 for v in TIGHT], created_at=f"h{i}", **kwargs)
            for i, level in enumerate(HISTORY_LEVELS)]


def test_without_history_a_significant_shift_is_inconclusive_because_drift_is_unknown():
    """The first PRs after adoption: the within-run test alone calls +6 % a regression, but with one run of
    the baseline build nothing tells it from drift between runs."""
    verdict = _gate(_cpu_record("baseline", TIGHT, created_at="b"),
                    _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"))
    rule = verdict.rules[0]
    assert verdict.outcome == "INCONCLUSIVE" and rule.cause == Cause.DRIFT_UNKNOWN
    assert rule.reason.startswith("cpu_per_request: regression") and rule.p_adjusted < 0.05
    assert any("run-to-run drift is unknown" in note for note in verdict.notes)


def test_history_that_drifts_turns_a_drift_sized_shift_into_inconclusive():
    verdict = _gate(_cpu_record("baseline", TIGHT, created_at="b"),
                    _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"), _history())
    rule = verdict.rules[0]
    assert verdict.outcome == "INCONCLUSIVE", rule.reason
    assert rule.comparison.run_level.runs == 5 and rule.comparison.run_level.df == 4
    assert "another run" in rule.reason
    assert any("measured on 5 runs" in note for note in verdict.notes)

def test_the_run_level_evidence_survives_verdict_json(tmp_path):
    verdict = _gate(_cpu_record("baseline", TIGHT, created_at="b"),
                    _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"), _history())
    verdict.save(tmp_path)
    assert Verdict.load(tmp_path) == verdict


def test_a_shift_far_beyond_the_drift_still_fails():
    verdict = _gate(_cpu_record("baseline", TIGHT, created_at="b"),
                    _cpu_record("candidate", [v * 1.6 for v in TIGHT], created_at="c"), _history())
    assert verdict.outcome == "FAIL", verdict.rules[0].reason
    assert verdict.rules[0].comparison.run_level is not None


def test_configured_noise_acts_without_history():
    verdict = _gate(_cpu_record("baseline", TIGHT, created_at="b"),
                    _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"), (),
                    "compare.run_noise_pct=5")
    assert verdict.outcome == "INCONCLUSIVE"
    assert verdict.rules[0].comparison.run_level.source == "configured run_noise_pct 5"
    assert not any("drift is unknown" in note for note in verdict.notes)


def test_history_measured_differently_is_skipped_with_a_note():
    other_env = replace(ENV, cpu_model="another cpu")
    history = [*_history(digest="other")[:2], *_history(env=other_env)[2:]]
    verdict = _gate(_cpu_record("baseline", TIGHT, created_at="b"),
                    _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"), history)
    assert verdict.outcome == "INCONCLUSIVE" and verdict.rules[0].cause == Cause.DRIFT_UNKNOWN
    assert verdict.rules[0].comparison.run_level is None
    skipped = [note for note in verdict.notes if "not used" in note]
    assert len(skipped) == 4
    assert any("other target or load settings" in n for n in skipped)
    assert any("other environment (cpu_model)" in n for n in skipped)


def test_records_of_one_interleaved_run_get_no_run_level_test():
    settings = {"pairing_id": "run-1"}
    base = replace(_cpu_record("baseline", TIGHT, created_at="b"), load_settings=settings)
    cand = replace(_cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"), load_settings=settings)
    verdict = _gate(base, cand, _history())
    assert verdict.rules[0].comparison.run_level is None
    assert not any("run-to-run" in note for note in verdict.notes)


# ---------------------------------------------------------------- the CLI
def _perfgate(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "perfgate", *args], cwd=cwd, capture_output=True, text=True,  # noqa: S603
                          timeout=120, check=False, env={"PATH": "/usr/bin:/bin"})


def test_compare_reads_history_from_the_command_line(tmp_path):
    base = _cpu_record("baseline", TIGHT, created_at="b").save(tmp_path / "base")
    cand = _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c").save(tmp_path / "cand")
    history = [h.save(tmp_path / f"h{i}") for i, h in enumerate(_history())]
    config = tmp_path / "perfgate.yml"
    config.write_text(f"gates: {CPU_RULE}\nreport: {{comment: never, plots: false}}\n", encoding="utf-8")
    args = ["compare", "--config", str(config), "--baseline", str(base.path), "--candidate", str(cand.path)]
    without = _perfgate(*args, "--out", str(tmp_path / "o1"), cwd=tmp_path)
    assert without.returncode == 4, without.stderr
    assert Verdict.load(tmp_path / "o1").rules[0].cause == Cause.DRIFT_UNKNOWN
    with_history = _perfgate(*args, "--out", str(tmp_path / "o2"),
                             *(arg for h in history for arg in ("--history", str(h.path))), cwd=tmp_path)
    assert with_history.returncode == 4, with_history.stderr
    assert Verdict.load(tmp_path / "o2").rules[0].comparison.run_level.runs == 5


def test_an_unreadable_history_record_is_a_usage_error_naming_it(tmp_path):
    base = _cpu_record("baseline", TIGHT, created_at="b").save(tmp_path / "base")
    cand = _cpu_record("candidate", TIGHT, created_at="c").save(tmp_path / "cand")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "record.json").write_text("{not json", encoding="utf-8")
    done = _perfgate("compare", "--baseline", str(base.path), "--candidate", str(cand.path),
                     "--history", str(broken), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert done.returncode == 2
    assert str(broken) in done.stderr


def test_the_comment_says_the_comparison_allowed_for_run_drift():
    from perfgate.report.markdown import render_markdown

    with_history = _gate(_cpu_record("baseline", TIGHT, created_at="b"),
                         _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"), _history())
    text = render_markdown(with_history)
    assert "The baseline came from another run" in text and "5 runs of the baseline build" in text
    alone = _gate(_cpu_record("baseline", TIGHT, created_at="b"),
                  _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"))
    assert "The baseline came from another run" not in render_markdown(alone)


# ---------------------------------------------------------------- history from the base branch's artifacts


def _zipped_record(folder):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in folder.rglob("*"):
            if path.is_file():
                archive.write(path, f"baseline/{path.relative_to(folder)}")
    return buffer.getvalue()


def test_an_artifact_baseline_brings_its_history_and_the_gate_uses_it(fake_github, tmp_path):
    from support.ghapi.server import TEST_TOKEN

    from perfgate.baseline import open_baseline, open_history

    repo = "acme/greeter"
    levels = (*HISTORY_LEVELS, 100.0)  # oldest first; the newest artifact is the baseline itself
    for i, level in enumerate(levels):
        saved = _cpu_record("baseline", [v * level / 100 for v in TIGHT], created_at=f"run{i}").save(tmp_path / f"r{i}")
        fake_github.add_artifact(fake_github.add_run(repo), "perfgate-baseline", _zipped_record(saved.path))
    fake_github.add_artifact(fake_github.add_run(repo), "perfgate-baseline", b"not a zip")  # newest: broken
    environ = {"GITHUB_TOKEN": TEST_TOKEN, "GITHUB_REPOSITORY": repo, "GITHUB_API_URL": fake_github.base_url,
               "GITHUB_BASE_REF": "main"}
    config = load_config(None, environ={}, set_args=[f"gates={CPU_RULE}", "baseline.history_runs=6"],
                         require_target=False)
    with pytest.raises(BaselineError, match="not a readable zip"):
        open_baseline(config, environ, tmp_path / "out")  # the baseline itself must be readable
    baseline = _cpu_record("baseline", TIGHT, created_at=f"run{len(levels) - 1}")
    history = open_history(config, baseline, environ, tmp_path / "out", from_artifacts=True)
    assert sorted(r.created_at for r in history.records) == ["run0", "run1", "run2", "run3"]
    assert history.notes == ()
    verdict = decide(load_inputs(baseline, _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"),
                                 history.records, notes=history.notes), config, created_at="now")
    assert verdict.outcome == "INCONCLUSIVE" and verdict.rules[0].comparison.run_level.runs == 5


def test_an_artifact_baseline_and_its_history_download_each_zip_once(fake_github, tmp_path):
    from support.ghapi.server import TEST_TOKEN

    from perfgate.baseline import open_baseline_and_history

    repo = "acme/greeter"
    for i, level in enumerate((*HISTORY_LEVELS[:2], 100.0)):  # oldest first; the newest is the baseline
        saved = _cpu_record("baseline", [v * level / 100 for v in TIGHT], created_at=f"run{i}").save(tmp_path / f"r{i}")
        fake_github.add_artifact(fake_github.add_run(repo), "perfgate-baseline", _zipped_record(saved.path))
    environ = {"GITHUB_TOKEN": TEST_TOKEN, "GITHUB_REPOSITORY": repo, "GITHUB_API_URL": fake_github.base_url,
               "GITHUB_BASE_REF": "main"}
    config = load_config(None, environ={}, set_args=[f"gates={CPU_RULE}", "baseline.history_runs=5"],
                         require_target=False)
    baseline, history = open_baseline_and_history(config, environ, tmp_path / "out")
    assert baseline.created_at == "run2"
    assert sorted(r.created_at for r in history.records) == ["run0", "run1"] and history.notes == ()
    downloads = [r.path for r in fake_github.storage_requests()]
    assert len(downloads) == 3 and len(set(downloads)) == 3, downloads  # the baseline's zip once, not twice


def test_history_that_cannot_be_downloaded_is_a_note_not_an_error(fake_github, tmp_path):
    from support.ghapi.server import TEST_TOKEN

    from perfgate.baseline import open_history

    config = load_config(None, environ={}, set_args=[f"gates={CPU_RULE}"], require_target=False)
    baseline = _cpu_record("baseline", TIGHT, created_at="b")
    # A token that may not read the repository's runs (403: not retried; an unreachable API is retried with
    # back-off, which tests/unit/github covers).
    fake_github.add_fault(403, path_contains="/actions/", times=None, message="Resource not accessible by integration")
    environ = {"GITHUB_TOKEN": TEST_TOKEN, "GITHUB_REPOSITORY": "acme/greeter", "GITHUB_API_URL": fake_github.base_url}
    history = open_history(config, baseline, environ, tmp_path, from_artifacts=True)
    assert history.records == ()
    assert len(history.notes) == 1 and "earlier baseline artifacts not downloaded" in history.notes[0]
    assert "403" in history.notes[0] or "not accessible" in history.notes[0], history.notes


def test_a_drift_bound_verdict_suggests_interleaving_not_more_repetitions():
    verdict = _gate(_cpu_record("baseline", TIGHT, created_at="b"),
                    _cpu_record("candidate", [v * 1.06 for v in TIGHT], created_at="c"), _history())
    assert any("compare.schedule: duet" in tip for tip in verdict.suggestions)
    assert not any("more repetitions, longer" in tip for tip in verdict.suggestions)
