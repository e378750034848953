"""errors.EXIT_CODES is the one exit-code table: --help, README, action.yml and the docs say what it says."""

from __future__ import annotations

import re

import pytest
import yaml
from support.paths import ROOT

from perfgate import errors
from perfgate.cli import main

SUMMARY = errors.exit_code_summary()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_table_holds_the_codes_the_program_uses():
    codes = [code for code, _, _ in errors.EXIT_CODES]
    assert codes == [str(errors.EXIT_PASS), str(errors.EXIT_REGRESSION), str(errors.EXIT_USAGE),
                     str(errors.EXIT_TOOL), str(errors.EXIT_INCONCLUSIVE),
                     f"{errors.EXIT_INTERRUPTED} / {errors.EXIT_TERMINATED}"]
    assert SUMMARY == "0 pass/warn, 1 regression, 2 usage or config, 3 tool or infrastructure, 4 inconclusive"


def test_readme_table_is_the_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| ([0-9][0-9 /]*) \| (.*) \|$", section, flags=re.M)
    assert rows == [(code, meaning) for code, _, meaning in errors.EXIT_CODES]


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["compare", "--help"]])
def test_every_help_ends_with_the_codes(argv, capsys):
    assert main(argv) == errors.EXIT_PASS
    assert SUMMARY in flat(capsys.readouterr().out)


def test_action_and_docs_name_the_same_codes():
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert SUMMARY in action["outputs"]["exit-code"]["description"]
    for doc in ("docs/action.md", "docs/architecture.md"):
        assert SUMMARY in flat((ROOT / doc).read_text(encoding="utf-8")), doc
