"""Each subcommand imports what it uses: the quick ones start without the heavy libraries.

Every case runs the real CLI in a fresh interpreter (imports are per process) and reads sys.modules
as the command leaves it. A module-level import added anywhere on a command's path fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.imports import imports_of
from support.paths import TEST_DATA

PROFILE = TEST_DATA / "pprof" / "greeter-base-1.pb.gz"
OTHER_PROFILE = TEST_DATA / "pprof" / "greeter-cand-1.pb.gz"

# What a user waits for on every start: statistics, plotting, GitHub's client, HTTP, arrays.
HEAVY = ("scipy", "numpy", "matplotlib", "github", "requests", "urllib3")

@pytest.mark.parametrize("argv", [
    ["--help"],
    ["run", "--help"],
    ["compare", "--help"],
    ["profile", "top", str(PROFILE)],
    ["profile", "top", "--json", str(PROFILE)],
    ["profile", "diff", str(PROFILE), str(OTHER_PROFILE)],
    ["profile", "diff", "--json", str(PROFILE), str(OTHER_PROFILE)],
    ["doctor", "--json"],
], ids=lambda argv: " ".join(a if "/" not in a else Path(a).name for a in argv))
def test_quick_commands_start_without_heavy_libraries(argv, tmp_path):
    result = imports_of(argv, tmp_path)
    assert result["code"] in (0, 3), result  # doctor exits 3 where ghz is missing
    heavy = sorted(set(HEAVY) & set(result["modules"]))
    assert not heavy, f"`perfgate {' '.join(argv)}` imported {heavy}"


def test_profile_top_output_is_real(tmp_path):
    """The guard above is only worth something if the command did its work in that process."""
    result = imports_of(["profile", "top", "--json", str(PROFILE)], tmp_path)
    rows = json.loads(result["stdout"])
    assert result["code"] == 0 and rows and {"function", "flat", "cum"} <= set(rows[0])
