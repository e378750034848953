"""Each subcommand imports what it uses: the quick ones start without the heavy libraries.

Every case runs the real CLI in a fresh interpreter (imports are per process) and reads sys.modules
as the command leaves it. A module-level import added anywhere on a command's path fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.imports import imports_of
from support.paths import ROOT, TEST_DATA
from support.report_fixtures import fail_verdict

PROFILE = TEST_DATA / "pprof" / "greeter-base-1.pb.gz"
OTHER_PROFILE = TEST_DATA / "pprof" / "greeter-cand-1.pb.gz"
SRC = ROOT / "src"

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


# Modules in one fresh interpreter, imported one after the other, strictest first: the libraries each must not
# pull in at import time. Whatever appears right after a module's import is its own (those before it were
# checked already). The types of a comparison and a verdict, the Markdown report and `perfgate publish` read
# without the statistics; the gate's modules import scipy inside the functions that test, the plots
# matplotlib inside write_plots.
NO_STATISTICS = ("numpy", "scipy", "matplotlib")
MODULE_LIMITS = {
    "perfgate.compare.comparison": NO_STATISTICS,
    "perfgate.compare.multiple": NO_STATISTICS,
    "perfgate.compare.syscalls": NO_STATISTICS,
    "perfgate.verdict": NO_STATISTICS,
    "perfgate.report.document": NO_STATISTICS,
    "perfgate.report.layers": NO_STATISTICS,
    "perfgate.report.syscalls": NO_STATISTICS,
    "perfgate.report.markdown": NO_STATISTICS,
    "perfgate.publish": (*NO_STATISTICS, "github", "requests", "urllib3"),
    "perfgate.report.plot_keys": NO_STATISTICS,
    "perfgate.report.html": NO_STATISTICS,
    "perfgate.report.plots": ("scipy", "matplotlib"),
    "perfgate.compare.stats": ("scipy", "matplotlib"),
    "perfgate.compare.paired": ("scipy", "matplotlib"),
    "perfgate.compare.runs": ("scipy", "matplotlib"),
    "perfgate.compare.movers": ("scipy", "matplotlib"),
    "perfgate.compare.functions": ("scipy", "matplotlib"),
    "perfgate.compare.layer_views": ("scipy", "matplotlib"),
    "perfgate.gate": ("scipy", "matplotlib", "github", "requests"),
}
IMPORT_EACH = """
import importlib, json, sys
seen = {}
for module in sys.argv[1:]:
    importlib.import_module(module)
    seen[module] = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps(seen))
"""


def test_modules_import_no_heavy_library_at_their_top():
    limits = MODULE_LIMITS
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(SRC)
    done = subprocess.run([sys.executable, "-c", IMPORT_EACH, *limits], env=env, capture_output=True,  # noqa: S603
                          text=True, check=True, timeout=60)
    seen = json.loads(done.stdout)
    assert list(seen) == list(limits) and all("perfgate" in modules for modules in seen.values())
    heavy = {module: sorted(set(forbidden) & set(seen[module])) for module, forbidden in limits.items()}
    assert not any(heavy.values()), f"imported at module level (import them inside the functions that use them): " \
                                    f"{ {module: found for module, found in heavy.items() if found} }"


@pytest.mark.parametrize("plots", [False, True], ids=["no-plots", "plots"])
def test_publish_of_a_saved_verdict_imports_no_statistics(plots, tmp_path):
    """`perfgate publish --from DIR` (the workflow_run job; it reads the saved PR with perfgate.github): the
    reports from the verdict without scipy; matplotlib only when it draws plots."""
    folder = tmp_path / "saved"
    fail_verdict().save(folder)
    result = imports_of(["publish", "--from", str(folder), "--set", f"report.plots={str(plots).lower()}"],
                        tmp_path)
    assert result["code"] == 0, result
    assert "checksumPayload" in (folder / "report.md").read_text(encoding="utf-8")
    assert "checksumPayload" in (folder / "report.html").read_text(encoding="utf-8")
    forbidden = {"scipy"} | (set() if plots else {"matplotlib"})
    heavy = sorted(forbidden & set(result["modules"]))
    assert not heavy, f"`perfgate publish` imported {heavy}"


PRELOAD = """
import json, sys
from perfgate.preload import Preload, gate_modules
Preload(gate_modules(plots=sys.argv[1] == "plots")).start().join()
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.mark.parametrize("plots", [False, True], ids=["no-plots", "plots"])
def test_the_warm_up_preloads_what_the_gate_imports_lazily(plots):
    """A run that compares imports scipy (and matplotlib when it draws plots) during the warm-up, in the
    background: the gate's modules import them only where a test runs or a plot is drawn, after the windows."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(SRC)
    done = subprocess.run([sys.executable, "-c", PRELOAD, "plots" if plots else "none"], env=env,  # noqa: S603
                          capture_output=True, text=True, check=True, timeout=120)
    modules = set(json.loads(done.stdout))
    assert {"scipy", "numpy"} <= modules
    assert ("matplotlib" in modules) == plots
