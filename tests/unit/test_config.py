"""Config validation: every problem reported at once, by key path, with exit code 2 from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.paths import ROOT

from perfgate.cli import main
from perfgate.config import DEFAULT_GATES, config_keys, load_config
from perfgate.errors import EXIT_USAGE, ConfigError

GOOD = "target:\n  address: 127.0.0.1:50051\n  call: greeter.Greeter/SayHello\n"
TWO_BUILDS = "service: {command: [svc]}\ncompare:\n  mode: interleaved\n  baseline_service: {command: [svc]}\n"
TWO_BUILDS_PROFILED = "cpu: {pprof_url: 'http://127.0.0.1:6060'}\n" + TWO_BUILDS


def run_cli(tmp_path: Path, capsys, text: str | None, *extra: str) -> tuple[int, str]:
    args = ["run", "--out", str(tmp_path / "out")]
    if text is not None:
        path = tmp_path / "perfgate.yml"
        path.write_text(text, encoding="utf-8")
        args += ["--config", str(path)]
    code = main([*args, *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD + "load:\n  concurrency: ten\n", 'load.concurrency: expected an integer >= 1 and <= 10000, got "ten"'),
    (GOOD + "load:\n  repetitions: -3\n", "load.repetitions: expected an integer >= 1 and <= 1000, got -3"),
    (GOOD + "load:\n  duration_s: 0\n", "load.duration_s: expected a finite number > 0 and <= 3600, got 0"),
    (GOOD + "load:\n  concurency: 4\n", "load.concurency: unknown key (did you mean 'concurrency'?)"),
    (GOOD + "laod:\n  concurrency: 4\n", "laod: unknown key (did you mean 'load'?)"),
    ("target:\n  call: a.B/C\n", "target.address: required, but not set"),
    (GOOD + "target2: {}\n", "target2: unknown key"),
    (GOOD + "load: [1, 2]\n", "load: expected a mapping, got [1, 2]"),
    (GOOD + "cpu:\n  required: maybe\n", 'cpu.required: expected true or false, got "maybe"'),
    (GOOD + "compare:\n  mode: sideways\n", 'compare.mode: expected one of baseline, interleaved, got "sideways"'),
    (GOOD + "compare:\n  mode: interleaved\n", "compare.baseline_service.command: required when compare.mode"),
    (GOOD + "load:\n  total: 100\n  duration_s: 3\n", "load: set either duration_s or total, not both"),
    (GOOD + "compare:\n  baseline_address: 127.0.0.1:50052\n",
     "compare.baseline_address: only used when compare.mode is interleaved"),
    (GOOD + TWO_BUILDS + "  baseline_address: 127.0.0.1:50051\n",
     "compare.baseline_address: must differ from target.address (127.0.0.1:50051)"),
    (GOOD + TWO_BUILDS_PROFILED +
            "  baseline_address: 127.0.0.1:50052\n",
     "compare.baseline_pprof_url: required when compare.baseline_address and cpu.pprof_url are set"),
    (GOOD + TWO_BUILDS_PROFILED +
            "  baseline_address: 127.0.0.1:50052\n  baseline_pprof_url: 'http://127.0.0.1:6060'\n",
     "compare.baseline_pprof_url: must differ from cpu.pprof_url"),
    (GOOD + "compare:\n  baseline_pprof_url: 'http://127.0.0.1:6061'\n",
     "compare.baseline_pprof_url: only used with compare.baseline_address"),
    (GOOD + TWO_BUILDS + "  schedule: duet\n",
     "compare.schedule: duet loads both builds at once, so it needs compare.baseline_address"),
    (GOOD + "service:\n  command: '{binary} -grpc-addr {address}'\n",
     "service.command: uses {binary}, so service.build must say how to build it"),
    (GOOD + "service:\n  command: './svc -grpc-addr {address}'\n",
     "target.address: perfgate picks the address when service.command uses {address}"),
    (GOOD + "service:\n  command: '{binary}'\n  build: go build ./cmd/server\n",
     "service.build: must contain {output}"),
    (GOOD + "service:\n  command: ./svc\n  build: go build -o {output} .\n",
     "service.command: must start what service.build built: use {binary}"),
    (GOOD + "cpu: {pprof_url: 'http://127.0.0.1:6060'}\nservice:\n  command: './svc -p {pprof_address}'\n",
     "cpu.pprof_url: perfgate sets it when service.command uses {pprof_address}"),
    (GOOD + TWO_BUILDS.replace("baseline_service: {command: [svc]}", "baseline_service: {command: [svc, '{address}']}"),
     "compare.baseline_service.command: placeholders are filled in service.command only"),
    (GOOD + "load:\n  concurrency: 2\n  connections: 5\n", "load.connections: must be <= load.concurrency (2)"),
    (GOOD + "target:\n  data: 5\n", "target.data: expected a mapping"),
    (GOOD + "gates:\n  - metric: latency.p95\n", "gates[0]: rule for latency.p95 sets no threshold"),
    (GOOD + "gates:\n  - metric: latency.p95\n    max_increase_pc: 5\n",
     "gates[0].max_increase_pc: unknown key for metric latency.p95"),
    (GOOD + "gates:\n  - metric: function_share\n    max_share_pct: 45\n", "gates[0].pattern: required"),
    (GOOD + "gates:\n  - metric: latency.p95\n    max_increase_pct: -5\n",
     "gates[0].max_increase_pct: expected a finite number >= 0, got -5"),
    ("target: [\n", "invalid YAML"),
    ("- a\n- b\n", "expected a mapping of sections at the top level"),
])
def test_bad_config_exits_2_naming_the_key(tmp_path, capsys, text, expected):
    code, err = run_cli(tmp_path, capsys, text)
    assert code == EXIT_USAGE
    assert expected in err


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    code, err = run_cli(tmp_path, capsys, "target:\n  adress: x\nload:\n  concurrency: 0\n  repetitons: 2\n")
    assert code == EXIT_USAGE
    for expected in ("target.adress: unknown key (did you mean 'address'?)", "target.address: required",
                     "target.call: required", "load.concurrency: expected an integer >= 1 and <= 10000, got 0",
                     "load.repetitons: unknown key (did you mean 'repetitions'?)"):
        assert expected in err


def test_unreadable_and_missing_files(tmp_path, capsys):
    code, err = main(["run", "--config", str(tmp_path / "nope.yml")]), capsys.readouterr().err
    assert code == EXIT_USAGE and "nope.yml: not found" in err
    folder = tmp_path / "a-folder.yml"
    folder.mkdir()
    code, err = main(["run", "--config", str(folder)]), capsys.readouterr().err
    assert code == EXIT_USAGE and "cannot be read" in err


def test_precedence_cli_over_env_over_file(tmp_path):
    path = tmp_path / "perfgate.yml"
    path.write_text(GOOD + "load:\n  repetitions: 3\n  concurrency: 2\n  warmup_s: 1\n", encoding="utf-8")
    env = {"PERFGATE_LOAD__REPETITIONS": "7", "PERFGATE_LOAD__CONCURRENCY": "6"}
    config = load_config(path, environ=env, set_args=["load.repetitions=9"])
    assert config.load.repetitions == 9  # --set beats the environment
    assert config.load.concurrency == 6  # the environment beats the file
    assert config.load.warmup_s == 1.0  # the file beats the default
    assert config.load.connections == 1  # the default
    assert config.source == str(path)


def test_env_and_set_errors_name_their_source(tmp_path):
    path = tmp_path / "perfgate.yml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"PERFGATE_LOAD__CONCURRENCY": "many"}, set_args=["load.nope=1", "x"])
    problems = caught.value.problems
    assert 'load.concurrency (from PERFGATE_LOAD__CONCURRENCY): expected an integer >= 1, got "many"' in problems \
        or any("expected KEY=VALUE" in p for p in problems) or "--set x" in str(caught.value)


def test_set_without_equals_is_a_usage_error(tmp_path):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, environ={}, set_args=["load.repetitions"])


def test_defaults_and_gates(tmp_path):
    config = load_config(None, environ={}, set_args=["target.address=127.0.0.1:1", "target.call=a.B/C"])
    assert config.load.duration_s == 5.0 and config.load.total is None
    assert config.gates == DEFAULT_GATES
    assert config.service is None and config.output == "perfgate-out"
    assert "compare.fail_on_inconclusive" in config_keys()


def test_command_string_is_split_without_a_shell(tmp_path):
    config = load_config(None, environ={}, set_args=["target.address=127.0.0.1:1", "target.call=a.B/C",
                                                     "service.command=./server --flag 'two words'"])
    assert config.service is not None
    assert config.service.command == ("./server", "--flag", "two words")


def test_example_config_is_valid():
    root = ROOT
    config = load_config(root / "examples" / "perfgate.yml", environ={})
    assert config.target.call == "greeter.Greeter/SayHello"
    assert config.service is not None


def test_every_config_key_is_documented():
    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in config_keys() if key != "gates" and f"`{key}`" not in docs]
    assert not missing, f"docs/configuration.md does not document {missing}"
