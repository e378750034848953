"""GitHub's published OpenAPI description, cut down to the operations perfgate calls.

The full description (npm @octokit/openapi, installed by `scripts/setup.sh --node`) is ~13 MB;
building a validator over all of it takes seconds. At session start we copy the path items
perfgate uses plus every component they reference (the transitive closure of `$ref`s) into a
small document, so validation still comes from GitHub's own schemas — nothing is hand-written.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI

ROOT = Path(__file__).resolve().parents[3]
OCTOKIT_OPENAPI = ROOT / ".tools" / "node" / "node_modules" / "@octokit" / "openapi"
SPEC_FILE = OCTOKIT_OPENAPI / "generated" / "api.github.com.json"

# The path items the fake serves (every method perfgate may use on them is implemented).
PATHS = (
    "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    "/repos/{owner}/{repo}/issues/comments/{comment_id}",
    "/repos/{owner}/{repo}/actions/runs",
    "/repos/{owner}/{repo}/actions/runs/{run_id}",
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
    "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}",
    "/repos/{owner}/{repo}/pulls/{pull_number}",
    "/user",
)


@dataclass(frozen=True)
class Operation:
    method: str  # lower case
    template: str
    operation_id: str
    pattern: re.Pattern[str]
    param_names: tuple[str, ...]
    query_names: frozenset[str]
    statuses: frozenset[str]


@dataclass(frozen=True)
class GitHubSpec:
    version: str  # the @octokit/openapi package version
    document: dict[str, Any]
    openapi: OpenAPI
    operations: tuple[Operation, ...]

    def example(self, name: str) -> Any:
        """A deep copy of components.examples[name].value: the template for a response."""
        return copy.deepcopy(self.document["components"]["examples"][name]["value"])

    def match(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], bool]:
        """(operation, path params, path_known) for a request path without the API prefix."""
        path_known = False
        for op in self.operations:
            found = op.pattern.match(path)
            if found:
                path_known = True
                if op.method == method.lower():
                    return op, found.groupdict(), True
        return None, {}, path_known


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref)
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _subset(full: dict[str, Any]) -> dict[str, Any]:
    paths = {p: full["paths"][p] for p in PATHS}
    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        node = _resolve(full, ref)
        components.setdefault(kind, {})[name.replace("~1", "/").replace("~0", "~")] = node
        _refs(node, pending)
    return {"openapi": full["openapi"], "info": full["info"], "servers": full["servers"],
            "paths": paths, "components": components}


def _operations(document: dict[str, Any]) -> tuple[Operation, ...]:
    ops = []
    for template, item in document["paths"].items():
        names = tuple(re.findall(r"{([^}]+)}", template))
        regex = "^" + re.sub(r"\\{([^}]+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        for method, op in item.items():
            if method == "parameters":
                continue
            params = [_resolve(document, p["$ref"]) if "$ref" in p else p
                      for p in item.get("parameters", []) + op.get("parameters", [])]
            ops.append(Operation(
                method=method,
                template=template,
                operation_id=op["operationId"],
                pattern=re.compile(regex),
                param_names=names,
                query_names=frozenset(p["name"] for p in params if p["in"] == "query"),
                statuses=frozenset(op["responses"]),
            ))
    return tuple(ops)


@functools.cache
def load_github_spec(spec_file: str | os.PathLike[str] = SPEC_FILE) -> GitHubSpec:
    path = Path(spec_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"GitHub's OpenAPI description is not installed ({path}); run `scripts/setup.sh --node`")
    full = json.loads(path.read_text(encoding="utf-8"))
    package = json.loads((path.parent.parent / "package.json").read_text(encoding="utf-8"))
    document = _subset(full)
    return GitHubSpec(
        version=package["version"],
        document=document,
        openapi=OpenAPI.from_dict(document),
        operations=_operations(document),
    )
