"""Real webhook payloads from npm @octokit/webhooks-examples, to write as $GITHUB_EVENT_PATH."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from .spec import ROOT

EXAMPLES_FILE = ROOT / ".tools/node/node_modules/@octokit/webhooks-examples/api.github.com/index.json"


@functools.cache
def _examples() -> dict[str, list[dict[str, Any]]]:
    if not EXAMPLES_FILE.is_file():
        raise FileNotFoundError(f"{EXAMPLES_FILE} is missing; run `scripts/setup.sh --node`")
    entries = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    return {entry["name"]: entry["examples"] for entry in entries}


def webhook_example(event: str, action: str) -> dict[str, Any]:
    """A deep copy of the first example payload of `event` with that `action`."""
    for payload in _examples()[event]:
        if payload.get("action") == action:
            return copy.deepcopy(payload)
    raise KeyError(f"no {event}/{action} example")


def webhook_examples(event: str) -> list[dict[str, Any]]:
    """Deep copies of every example payload of `event` (e.g. all the push examples, to pick one by its ref)."""
    return copy.deepcopy(_examples()[event])
