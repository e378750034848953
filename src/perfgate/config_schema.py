"""perfgate.yml's JSON Schema, generated from the config model (config.SCHEMA and the gate-rule tables).

Editors (yaml-language-server) complete and check keys with it. It is derived, never edited:
`make generate` writes schema/perfgate.schema.json, and tests/unit/test_config_schema.py
fails when the committed file differs from what the model gives. The model stays the judge: a few
things it checks are beyond a schema (cross-field rules such as duet needing baseline_address, a
command that shlex cannot split, 5.0 where an integer is expected), so the schema is at most more
lenient than perfgate, never stricter. Descriptions come from docs/configuration.md's key tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from perfgate import config, metrics

SCHEMA_PATH = "schema/perfgate.schema.json"
DRAFT = "http://json-schema.org/draft-07/schema#"  # the draft editors' YAML servers support best
_DOC_ROW = re.compile(r"^\| `([a-z_.]+)` \|[^|]*\|[^|]*\| (.*) \|\s*$")
_DOC_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


class MissingSchema(Exception):
    """A config checker without a JSON Schema fragment (config.with_schema)."""


def json_schema(descriptions: Mapping[str, str] | None = None) -> dict[str, Any]:
    descriptions = descriptions or {}
    top = _section(config.SCHEMA, "", descriptions)
    top["type"] = "object"  # an empty file reads as null: nothing to complete
    return {
        "$schema": DRAFT,
        "title": "perfgate.yml",
        "description": "perfgate's configuration: every key, its type and default are in docs/configuration.md. "
                       "Generated from perfgate's config model; do not edit.",
        **top,
    }


def render(descriptions: Mapping[str, str] | None = None) -> str:
    return json.dumps(json_schema(descriptions), indent=2, ensure_ascii=False) + "\n"


def descriptions_from_docs(markdown: str) -> dict[str, str]:
    """`| \\`load.rps\\` | type | default | meaning |` rows -> {"load.rps": "meaning"} for the keys the model has."""
    known = set(config.config_keys())
    found = {}
    for line in markdown.splitlines():
        match = _DOC_ROW.match(line)
        if match and match.group(1) in known:
            found[match.group(1)] = _DOC_LINK.sub(r"\1", match.group(2)).replace("\\|", "|").strip()
    return found


def _section(spec: Mapping[str, Any], prefix: str, descriptions: Mapping[str, str]) -> dict[str, Any]:
    properties = {}
    for key, node in spec.items():
        path = f"{prefix}{key}"
        if path == "gates":
            properties[key] = _gates()
        elif isinstance(node, dict):
            properties[key] = _section(node, f"{path}.", descriptions)
        else:
            properties[key] = _leaf(path, node, descriptions.get(path))
    return {"type": ["object", "null"], "properties": properties, "additionalProperties": False}


def _leaf(path: str, field: config.Field, description: str | None) -> dict[str, Any]:
    schema = dict(_fragment(path, field.check))
    if description:
        schema["description"] = description
    if field.default is not config.REQUIRED and field.default is not None:
        schema["default"] = field.default
    return schema


def _fragment(path: str, check: Any) -> dict[str, Any]:
    fragment = getattr(check, "json_schema", None)
    if fragment is None:
        raise MissingSchema(f"{path}: its checker has no JSON Schema; build it with perfgate.config.with_schema")
    return fragment


def _gates() -> dict[str, Any]:
    """A list of rules; which keys a rule takes, and which of them are required, depend on its metric."""
    per_metric = [_rule(metric, keys) for metric, keys in config.RULE_KEYS.items()]
    rule = {
        "type": "object",
        "required": ["metric"],
        "properties": {"metric": {"enum": list(config.RULE_KEYS)}},
        "allOf": per_metric,
    }
    return {"type": ["array", "null"], "items": rule,
            "description": "The gate's rules; without `gates:` the defaults in docs/configuration.md apply."}


def _rule(metric: str, keys: tuple[str, ...]) -> dict[str, Any]:
    allowed = ("severity", *keys)
    then: dict[str, Any] = {
        "properties": {"metric": {"const": metric},
                       **{key: _fragment(f"gates[].{key}", config.RULE_CHECKS[key]) for key in allowed}},
        "additionalProperties": False,
        "anyOf": [{"required": [key]} for key in metrics.rule_thresholds(metric)],
    }
    if metric == "function_share":
        then["required"] = ["pattern"]
    return {"if": {"properties": {"metric": {"const": metric}}, "required": ["metric"]}, "then": then}
