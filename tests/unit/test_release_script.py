"""scripts/release.py: the release's checks and the pins it writes, on copies of the real files."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
from support.paths import ROOT

SPEC = importlib.util.spec_from_file_location("release_script", ROOT / "scripts" / "release.py")
SCRIPT = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(SCRIPT)
DIGEST = "sha256:" + "ab" * 32
SHA = "0123456789abcdef0123456789abcdef01234567"


def copy(root: Path, *names: str) -> Path:
    for name in names:
        source, target = ROOT / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    return root


def test_check_wants_the_tag_form_pyproject_version_and_a_dated_changelog_section(tmp_path):
    root = copy(tmp_path, "pyproject.toml", "CHANGELOG.md")
    version = re.search(r'^version = "(.+)"$', (root / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    with pytest.raises(SCRIPT.ReleaseError, match="expected vX.Y.Z"):
        SCRIPT.check(root, version)
    with pytest.raises(SCRIPT.ReleaseError, match="pyproject.toml says version"):
        SCRIPT.check(root, "v99.0.0")
    with pytest.raises(SCRIPT.ReleaseError, match=r"no '## \[.*\] - YYYY-MM-DD' section"):
        SCRIPT.check(root, f"v{version}")  # the real changelog has only [Unreleased] until a release
    changelog = root / "CHANGELOG.md"
    dated = f"## [Unreleased]\n\n## [{version}] - 2026-01-02"
    changelog.write_text(changelog.read_text().replace("## [Unreleased]", dated))
    notes = SCRIPT.check(root, f"v{version}")
    assert notes.startswith("### Added") and "perfgate init" in notes


def test_pin_image_writes_the_digest_into_the_one_default_image_line(tmp_path):
    action = tmp_path / "action.yml"
    action.write_text('runs:\n  steps:\n    - env:\n        PERFGATE_DEFAULT_IMAGE: ""\n        OTHER: x\n')
    SCRIPT.pin_image(tmp_path, f"ghcr.io/acme/perfgate@{DIGEST}")
    assert f'        PERFGATE_DEFAULT_IMAGE: "ghcr.io/acme/perfgate@{DIGEST}"\n        OTHER: x' in action.read_text()
    for bad in ("ghcr.io/Acme/perfgate@" + DIGEST, "docker.io/acme/perfgate@" + DIGEST, "ghcr.io/acme/perfgate:1.0",
                'ghcr.io/acme/perfgate@sha256:"; rm -rf /'):
        with pytest.raises(SCRIPT.ReleaseError, match="expected ghcr.io"):
            SCRIPT.pin_image(tmp_path, bad)
    action.write_text("runs: {}\n")
    with pytest.raises(SCRIPT.ReleaseError, match="found 0"):
        SCRIPT.pin_image(tmp_path, f"ghcr.io/acme/perfgate@{DIGEST}")


def test_pin_examples_moves_every_pin_and_the_source_of_truth_together(tmp_path):
    root = copy(tmp_path, "examples", "README.md", "docs", "src/perfgate/release.py")
    changed = SCRIPT.pin_examples(root, SHA, "v1.2.3")
    assert root / "src" / "perfgate" / "release.py" in changed and root / "README.md" in changed
    texts = [p.read_text() for p in [*root.glob("examples/**/*.yml"), root / "README.md", *root.glob("docs/*.md")]]
    pins = {pin for text in texts for pin in re.findall(r"perfgate/perfgate@[0-9a-f]{40} # [^\n`]*", text)}
    assert pins == {f"perfgate/perfgate@{SHA} # v1.2.3"}
    source = (root / "src" / "perfgate" / "release.py").read_text()
    assert f'ACTION_COMMIT = "{SHA}"' in source and 'ACTION_VERSION = "v1.2.3"' in source
    with pytest.raises(SCRIPT.ReleaseError):
        SCRIPT.pin_examples(root, "main", "v1.2.3")


def test_the_command_line_says_how_to_use_it(capsys):
    assert SCRIPT.main([]) == 2
    assert "pin-image" in capsys.readouterr().err
    assert SCRIPT.main(["pin-image", "nope"]) == 1
    assert "expected ghcr.io" in capsys.readouterr().err
