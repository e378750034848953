"""README's Action Inputs/Outputs tables are generated from action.yml (`make generate`) and kept in sync."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import yaml
from support.paths import ROOT

SCRIPT = ROOT / "scripts" / "generate.py"


def load_generate():
    spec = importlib.util.spec_from_file_location("generate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATE = load_generate()


def test_readme_tables_match_action_yml():
    committed = (ROOT / "README.md").read_text(encoding="utf-8")
    assert committed == GENERATE.readme_text(ROOT), (
        "README.md's Action Inputs/Outputs tables differ from action.yml: run `make generate` and commit README.md")


def test_every_input_and_output_has_a_row_with_its_description():
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    tables = GENERATE.action_tables(action)
    rows = {line.split("|")[1].strip().strip("`"): line for line in tables.splitlines()
            if line.startswith("| `")}
    assert set(rows) == set(action["inputs"]) | set(action["outputs"])
    for name, spec in [*action["inputs"].items(), *action["outputs"].items()]:
        assert " ".join(spec["description"].split()).replace("|", "\\|") in rows[name]


def test_a_changed_description_makes_the_check_fail_with_the_command(tmp_path):
    for name in ("README.md", "docs/configuration.md", "schema/perfgate.schema.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    action = (ROOT / "action.yml").read_text(encoding="utf-8")
    (tmp_path / "action.yml").write_text(action.replace("One line that says what happened",
                                                        "One | line that says what happened"), encoding="utf-8")
    check = [sys.executable, str(SCRIPT), "--root", str(tmp_path)]
    done = subprocess.run([*check, "--check"], capture_output=True, text=True, timeout=60)  # noqa: S603
    assert done.returncode == 1
    assert "README.md is stale: run `make generate`" in done.stderr
    assert subprocess.run(check, capture_output=True, timeout=60).returncode == 0  # noqa: S603
    assert "One \\| line that says" in (tmp_path / "README.md").read_text(encoding="utf-8")
    assert subprocess.run([*check, "--check"], capture_output=True, timeout=60).returncode == 0  # noqa: S603
