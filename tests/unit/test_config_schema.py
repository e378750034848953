"""schema/perfgate.schema.json: generated from the config model, committed up to date, and agreeing with
the model key by key (never stricter than perfgate; more lenient only where the comment below says)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml
from support.paths import ROOT

from perfgate import config, config_schema, metrics
from perfgate.errors import ConfigError

SCHEMA_FILE = ROOT / config_schema.SCHEMA_PATH
EXAMPLE = ROOT / "examples" / "perfgate.yml"
TARGET = {"address": "127.0.0.1:50051", "call": "greeter.Greeter/SayHello"}


def load_generate():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "scripts" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATE = load_generate()
SCHEMA = json.loads(GENERATE.schema_text(ROOT))
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def test_the_committed_schema_is_what_the_model_generates():
    assert SCHEMA_FILE.exists(), f"{config_schema.SCHEMA_PATH} missing: run `make generate`"
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == GENERATE.schema_text(ROOT), (
        f"{config_schema.SCHEMA_PATH} is stale (a config key or its docs changed): run `make generate` and commit it")


def test_the_check_names_a_stale_file_and_the_command(tmp_path):
    for name in (config_schema.SCHEMA_PATH, "README.md", "action.yml", "docs/configuration.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / config_schema.SCHEMA_PATH).write_text("{}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate.py"), "--check", "--root",  # noqa: S603
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{config_schema.SCHEMA_PATH} is stale: run `make generate`" in done.stderr
    assert "README.md" not in done.stderr


def test_the_schema_is_a_valid_draft7_schema_with_every_key():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    in_schema = set(leaf_paths(SCHEMA["properties"], ""))
    assert in_schema == set(config.config_keys())


def leaf_paths(properties: dict, prefix: str) -> Iterator[str]:
    for key, node in properties.items():
        if "properties" in node and key != "gates":
            yield from leaf_paths(node["properties"], f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def leaves(spec: dict, prefix: str = "") -> Iterator[tuple[str, config.Field]]:
    for key, node in spec.items():
        if isinstance(node, dict):
            yield from leaves(node, f"{prefix}{key}.")
        elif f"{prefix}{key}" != "gates":
            yield f"{prefix}{key}", node


def sub_schema(path: str) -> dict:
    node: Any = SCHEMA
    for part in path.split("."):
        node = node["properties"][part]
    return node


def enum_values(fragment: Any) -> Iterator[Any]:
    if isinstance(fragment, dict):
        yield from fragment.get("enum", [])
        for value in fragment.values():
            yield from enum_values(value)
    elif isinstance(fragment, list):
        for value in fragment:
            yield from enum_values(value)


PROBES: list[Any] = [
    None, True, False, 0, 1, -1, 0.5, 2.5, 5.0, 10, 100, 101, 1000, "", "x", "ten", "0", "a b", "unbalanced 'quote",
    [], ["a"], ["a", "b"], ["a", 1], [1, 2], [0], [-3], [True], list(range(1, 10)), [None], [[]],
    {}, {"a": "b"}, {"a": 1}, {"a": {"b": 1}}, {"a": None}, [{"a": 1}], [{}], [{"a": 1}, 2],
]


def lenient_by_design(check, value: Any) -> bool:
    """What JSON Schema cannot say: 5.0 is an integer to it, and it cannot run shlex."""
    integral_float = isinstance(value, float) and value.is_integer()
    return integral_float or (isinstance(value, str) and "'" in value)


@pytest.mark.parametrize(("path", "field"), list(leaves(config.SCHEMA)), ids=lambda x: x if isinstance(x, str) else "")
def test_each_key_accepts_what_the_model_accepts_and_rejects_what_it_rejects(path, field):
    fragment = sub_schema(path)
    validator = jsonschema.Draft7Validator(fragment)
    for value in [*PROBES, *enum_values(fragment)]:
        by_model = field.check(value)[1] is None
        by_schema = validator.is_valid(value)
        assert by_schema or not by_model, f"{path}: the schema rejects {value!r}, which perfgate accepts"
        if by_schema and not by_model:
            assert lenient_by_design(field.check, value), f"{path}: the schema accepts {value!r}, perfgate does not"


def rule_cases() -> Iterator[dict]:
    for metric, keys in config.RULE_KEYS.items():
        thresholds = metrics.rule_thresholds(metric)
        base = {"metric": metric, thresholds[0]: 10}
        if metric == "function_share":
            base["pattern"] = "main.*"
        yield base
        yield {**base, "severity": "warn"}
        yield {**base, "severity": "maybe"}
        yield {**base, "max_increase_pct": 5, "max_decrease_pct": 5}
        yield {**base, "bogus": 1}
        yield {key: value for key, value in base.items() if key not in thresholds}
        yield {key: value for key, value in base.items() if key != "pattern"}
        for key in keys:
            for value in (-1, 0, 50, 150, "x", None, True, "flat", "cum", "machine", "service", "re:^main"):
                yield {**base, key: value}
    yield {"metric": "latency.p999", "max_increase_pct": 10}
    yield {"max_increase_pct": 10}
    yield {}


def model_accepts(data: dict) -> bool:
    try:
        config.build_config(data)
    except ConfigError:
        return False
    return True


def test_gate_rules_are_judged_alike_by_schema_and_model():
    cases = list(rule_cases())
    assert len(cases) > 300
    for rule in cases:
        data = {"target": TARGET, "gates": [rule]}
        by_model, by_schema = model_accepts(data), VALIDATOR.is_valid(data)
        assert by_model == by_schema or (by_schema and any(lenient_by_design(None, v) for v in rule.values())), (
            f"gates: [{rule}]: perfgate {'accepts' if by_model else 'rejects'} it, the schema does not agree")


def test_the_example_config_is_valid_and_points_editors_at_the_schema():
    text = EXAMPLE.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/perfgate.schema.json"
    assert (EXAMPLE.parent / first.split("=", 1)[1]).resolve() == SCHEMA_FILE
    data = yaml.safe_load(text)
    assert not list(VALIDATOR.iter_errors(data))
    assert model_accepts(data)


@pytest.mark.parametrize("mistake", [
    {"load": {"repetitons": 5}}, {"load": {"repetitions": "five"}}, {"compare": {"mode": "duel"}},
    {"gates": [{"metric": "rps", "max_increase_pct": 10}]}, {"serivce": {"command": "x"}},
])
def test_a_typo_is_caught_by_both(mistake):
    data = {"target": TARGET, **mistake}
    assert not model_accepts(data)
    assert not VALIDATOR.is_valid(data)


def test_check_jsonschema_validates_the_example_with_the_committed_schema():
    checker = ROOT / ".venv" / "bin" / "check-jsonschema"
    if not checker.exists():
        pytest.fail(f"{checker} missing: run `scripts/setup.sh --python` (make test does)")
    done = subprocess.run([str(checker), "--schemafile", str(SCHEMA_FILE), str(EXAMPLE)],  # noqa: S603
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_checker_without_a_schema_is_named():
    with pytest.raises(config_schema.MissingSchema, match=r"x\.y: its checker has no JSON Schema"):
        config_schema._fragment("x.y", lambda value: (value, None))
