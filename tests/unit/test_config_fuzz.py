"""The config loader under fuzzing: whatever perfgate.yml, the environment or --set hold, loading either
works or is a ConfigError (exit 2) naming what is wrong: never exit 3 "internal error", never a hang."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st
from support.fuzz import FUZZ, JSON_VALUES, mutations

from perfgate.config import Config, load_config
from perfgate.errors import EXIT_USAGE, ConfigError

VALID: dict[str, Any] = {
    "target": {"address": "127.0.0.1:50051", "call": "a.B/C", "data": {"name": "x", "n": 3},
               "metadata": {"k": "v"}, "tls": {"skip_verify": False}},
    "load": {"concurrency": 4, "duration_s": 2.0, "repetitions": 5, "rps": 100, "warmup_s": 1},
    "service": {"command": ["./server", "--port", "1"], "env": {"A": "1"}, "pass_env": ["B"], "ready": "port"},
    "cpu": {"pprof_url": "http://127.0.0.1:6060", "start_offset_s": 0.5},
    "kernel": {"service_pids": [1, 2], "depth_interval_ms": 100},
    "compare": {"mode": "interleaved", "alpha": 0.05, "baseline_service": {"command": "./base"},
                "contention": {"max_runq_p99_ratio": 3}},
    "baseline": {"history": ["a", "b"], "history_runs": 3},
    "gates": [{"metric": "latency.p95", "max_increase_pct": 10},
              {"metric": "function_share", "pattern": "re:^main\\.", "max_share_pct": 40},
              {"metric": "runq.depth", "max_depth": 5, "consecutive": 2}],
    "report": {"comment": "auto", "pushgateway": {"url": "http://127.0.0.1:9091"}},
    "output": "out",
}


def loads_or_exit_2(text: str | None = None, *, set_args: tuple[str, ...] = (),
                    environ: dict[str, str] | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = None
        if text is not None:
            path = Path(tmp) / "perfgate.yml"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            assert isinstance(load_config(path, environ=environ or {}, set_args=list(set_args)), Config)
        except ConfigError as error:
            assert error.exit_code == EXIT_USAGE and error.problems and all(error.problems)


@FUZZ
@given(mutations(VALID, count=4))
def test_a_mutated_config_loads_or_is_refused_with_exit_2(document: Any) -> None:
    loads_or_exit_2(yaml.safe_dump(document, allow_unicode=True))


@FUZZ
@given(st.text(max_size=300) | st.sampled_from(["&a [*a]", "{" * 5000, "- &x\n  - *x\n", "!!python/object:os.system x",
                                                ": :", "\t", "\x00", "a: !!binary AAAA", "? [a]\n: b"]))
def test_any_text_loads_or_is_refused_with_exit_2(text: str) -> None:
    loads_or_exit_2(text)


@FUZZ
@given(st.lists(st.text(max_size=40) | st.builds(lambda k, v: f"{k}={v}", st.sampled_from(
    ["load.repetitions", "compare.alpha", "gates", "target.data", "service.command", "load", "x.y"]),
    JSON_VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip())), max_size=5),
    st.dictionaries(st.sampled_from(["PERFGATE_LOAD__REPETITIONS", "PERFGATE_COMPARE__ALPHA", "PERFGATE_X__Y",
                                     "PERFGATE_TARGET__DATA", "PERFGATE_GATES"]), st.text(max_size=30), max_size=3))
def test_any_set_and_environment_values_load_or_are_refused_with_exit_2(set_args: list[str],
                                                                        environ: dict[str, str]) -> None:
    loads_or_exit_2(yaml.safe_dump(VALID), set_args=tuple(set_args), environ=environ)
