"""Hostile configurations end in exit 2 naming the key, quickly and in bounded memory: YAML bombs, NaN and
infinities, sizes beyond the stated bounds, regular expressions that do not compile, malformed --set."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.paths import ROOT

from perfgate.cli import main
from perfgate.errors import EXIT_USAGE

TARGET = "target: {address: 127.0.0.1:1, call: a.B/C}\n"


def laughs(levels: int = 9) -> str:
    """The "billion laughs": each anchor is ten aliases of the one before, 10**levels strings in all."""
    lines = ["l0: &l0 [ha, ha, ha, ha, ha, ha, ha, ha, ha, ha]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\ntarget: {{address: 127.0.0.1:1, call: a.B/C, data: {{x: *l{levels - 1}}}}}\n"


def run_bounded_perfgate(tmp_path: Path, config: str) -> tuple[int, str, float]:
    """`perfgate run --config` in a child limited to 1 GiB of address space and 60 s."""
    path = tmp_path / "perfgate.yml"
    path.write_text(config)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1024**3, 1024**3))

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "perfgate", "run", "--config", str(path)],  # noqa: S603
                          capture_output=True, text=True, timeout=60, preexec_fn=limit_memory, check=False,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return done.returncode, done.stderr, time.monotonic() - started


@pytest.mark.parametrize(("config", "message"), [
    (laughs(), "expands to more than 100000 values"),
    ("x: " + "[" * 100_000 + "]" * 100_000 + "\n" + TARGET, "nesting depth"),
    ("x: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n" + TARGET, "nesting depth"),
], ids=["billion-laughs", "100k-deep-list", "100k-deep-mapping"])
def test_yaml_bombs_end_in_exit_2_quickly_in_bounded_memory(tmp_path: Path, config: str, message: str) -> None:
    code, err, seconds = run_bounded_perfgate(tmp_path, config)
    assert code == EXIT_USAGE, err
    assert message in err and "perfgate.yml" in err
    assert seconds < 30  # a generous bound: it takes about 1 s; the child was also limited to 1 GiB


def config_error(tmp_path: Path, capsys, text: str, *set_args: str) -> str:
    (tmp_path / "perfgate.yml").write_text(text)
    args = [arg for item in set_args for arg in ("--set", item)]
    assert main(["run", "--config", str(tmp_path / "perfgate.yml"), *args]) == EXIT_USAGE
    return capsys.readouterr().err


def test_nan_and_infinity_are_rejected_wherever_a_number_is_read(tmp_path: Path, capsys) -> None:
    err = config_error(tmp_path, capsys, TARGET + "load: {duration_s: .nan, warmup_s: .inf}\n"
                       "gates: [{metric: latency.p95, max_increase_pct: .nan}, {metric: rps, min_value: -.inf},"
                       " {metric: cpu_per_request, max_increase_pct: 1" + "0" * 400 + "}]\n",
                       "compare.alpha=.nan", "compare.contention.max_runq_p99_ratio=.inf", "target.data={x: .nan}")
    for key in ("load.duration_s", "load.warmup_s", "gates[0].max_increase_pct", "gates[1].min_value",
                "gates[2].max_increase_pct", "compare.alpha", "compare.contention.max_runq_p99_ratio",
                "target.data"):
        assert key in err, key
    assert "internal error" not in err


def test_sizes_have_upper_bounds_checked_before_anything_runs(tmp_path: Path, capsys) -> None:
    err = config_error(tmp_path, capsys, TARGET + "load: {repetitions: 1000000000, concurrency: 10000000, "
                       "connections: 10000000, duration_s: 100000000, warmup_s: 1e9, rps: 1000000000000, "
                       "request_timeout_s: 1e12, max_run_s: 1e15}\nservice: {command: ./s, start_timeout_s: 1e9}\n")
    for key, bound in (("load.repetitions", "<= 1000"), ("load.concurrency", "<= 10000"),
                       ("load.connections", "<= 10000"), ("load.duration_s", "<= 3600"),
                       ("load.warmup_s", "<= 3600"), ("load.rps", "<= 1000000"), ("load.request_timeout_s", "<= 3600"),
                       ("load.max_run_s", "<= 3600"), ("service.start_timeout_s", "<= 3600")):
        assert any(key in line and bound in line for line in err.splitlines()), (key, err)


def test_every_regex_pattern_is_compiled_before_any_load(tmp_path: Path, capsys) -> None:
    err = config_error(tmp_path, capsys, TARGET + "gates:\n  - {metric: function_share, pattern: 're:main.(',"
                       " max_share_pct: 40}\n  - {metric: function_share, pattern: 're:[z-a]', max_share_pct: 40}\n")
    assert "gates[0].pattern" in err and "gates[1].pattern" in err and "not a valid regular expression" in err
    assert not (tmp_path / "perfgate-out").exists()


def test_all_bad_set_arguments_are_named_at_once(tmp_path: Path, capsys) -> None:
    err = config_error(tmp_path, capsys, TARGET, "load.repetitions", "=3", "load.nope=1", "load.concurrency=ten")
    for fragment in ("--set load.repetitions:", "--set =3:", "load.nope", "load.concurrency"):
        assert fragment in err, fragment
