"""Where things are: the repository, the project's tools (installed by scripts/setup.sh), the test data."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"
GREETER = TOOLS_BIN / "greeter"
GHZ = TOOLS_BIN / "ghz"
TEST_DATA = ROOT / "tests" / "data"
GOLDEN = ROOT / "tests" / "golden"
