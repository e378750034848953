"""A refused archive leaves nothing behind: not when extraction fails, and not when what it extracted
to is no usable record (a small zip of zeros must not leave its inflated content in the output folder)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from support.ghapi.server import TEST_TOKEN, FakeGitHub
from support.hostile_records import write_record

from perfgate.cli import main
from perfgate.errors import EXIT_USAGE, BaselineError
from perfgate.github import BaselineSource, RetryPolicy, download_baseline_artifact

ZEROS = 32 * 1024 * 1024  # inflates from ~32 KiB
FAST = RetryPolicy(backoff_factor_s=0.0, max_wait_s=5.0, seconds_between_requests=0.0,
                   seconds_between_writes=0.0, timeout_s=10.0, max_retries=2, sleep=lambda _: None)


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def left_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("content", [
    {"perfgate-out/zeros.bin": bytes(ZEROS)},  # no record at all
    {"perfgate-out/zeros.bin": bytes(ZEROS), "perfgate-out/record.json": b'{"schema_version": 1, "role": 7}'},
    {"perfgate-out/zeros.bin": bytes(ZEROS), "perfgate-out/record.json": b"[" * 100_000},
])
def test_a_baseline_zip_that_holds_no_usable_record_leaves_nothing(tmp_path: Path, capsys,
                                                                   content: dict[str, bytes]) -> None:
    (tmp_path / "base.zip").write_bytes(zip_of(content))
    cand = write_record(tmp_path / "cand", "candidate", [{"main.a": 10**8}] * 3)
    out = tmp_path / "out"
    assert main(["compare", "--baseline", str(tmp_path / "base.zip"), "--candidate", str(cand),
                 "--out", str(out)]) == EXIT_USAGE
    assert "base.zip" in capsys.readouterr().err
    assert left_in(out) == []


def test_a_baseline_artifact_without_a_record_leaves_nothing(fake_github: FakeGitHub, tmp_path: Path) -> None:
    run = fake_github.add_run("acme/greeter")
    fake_github.add_artifact(run, "perfgate-baseline", zip_of({"notes/zeros.bin": bytes(ZEROS),
                                                               "notes/x.json": json.dumps({}).encode()}))
    with pytest.raises(BaselineError, match="no record.json"):
        download_baseline_artifact(BaselineSource(repo="acme/greeter", artifact_name="perfgate-baseline",
                                                  branch="main", token=TEST_TOKEN, api_url=fake_github.base_url,
                                                  retry=FAST), tmp_path / "baseline")
    assert left_in(tmp_path) == []
