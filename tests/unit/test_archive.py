"""perfgate.archive: hostile zips and tarballs are rejected with the entry and the rule named."""

from __future__ import annotations

import io
import random
import stat
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from perfgate.archive import safe_extract_tar, safe_extract_zip
from perfgate.errors import BaselineError

GOOD_FILES = {
    "baseline/record.json": b'{"schema_version": 1}\n',
    "baseline/reps/rep-01/ghz.json": b"{}\n" * 100,
    "baseline/reps/rep-01/cpu.pb.gz": bytes(range(256)) * 40,
}


def make_zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests need
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for info, data in entries:
                zf.writestr(info, data)
    return path


def make_tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def unix_zip_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_good_zip_is_extracted_completely(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "ok.zip", [(name, data) for name, data in GOOD_FILES.items()]
                       + [("baseline/empty/", b"")])
    dest = safe_extract_zip(archive, tmp_path / "out")
    assert read_tree(dest) == GOOD_FILES
    assert (dest / "baseline" / "empty").is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # staging removed


def test_good_tgz_is_extracted_completely(tmp_path: Path) -> None:
    entries = [(tar_entry("baseline", tarfile.DIRTYPE, mode=0o755), None)]
    entries += [(tar_entry(name, mode=0o644), data) for name, data in GOOD_FILES.items()]
    dest = safe_extract_tar(make_tar(tmp_path / "ok.tgz", entries), tmp_path / "out")
    assert read_tree(dest) == GOOD_FILES


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("../evil.txt", "'..' path component"),
        ("baseline/../../evil.txt", "'..' path component"),
        ("/etc/cron.d/evil", "absolute path"),
        ("C:/Windows/evil", "absolute path"),
        ("..\\evil.txt", "backslash"),
        ("ok/\x1b[31mred", "control character"),
    ],
)
def test_zip_with_bad_names_is_rejected(tmp_path: Path, name: str, rule: str) -> None:
    archive = make_zip(tmp_path / "bad.zip", [("record.json", b"{}"), (name, b"pwned")])
    with pytest.raises(BaselineError) as caught:
        safe_extract_zip(archive, tmp_path / "out")
    assert rule in str(caught.value)
    assert repr(name) in str(caught.value)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "evil.txt").exists()


def test_zip_slip_writes_nothing_anywhere(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    archive = make_zip(tmp_path / "slip.zip", [("a.txt", b"first"), ("../escaped.txt", b"pwned")])
    with pytest.raises(BaselineError, match="rejected"):
        safe_extract_zip(archive, inner / "out")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["inner", "slip.zip"]


def test_zip_symlink_is_rejected(tmp_path: Path) -> None:
    link = unix_zip_entry("baseline/record.json", stat.S_IFLNK | 0o777)
    archive = make_zip(tmp_path / "link.zip", [(link, b"/etc/passwd")])
    with pytest.raises(BaselineError, match="'baseline/record.json' rejected: symbolic link"):
        safe_extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_device_entry_is_rejected(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "dev.zip", [(unix_zip_entry("fifo", stat.S_IFIFO | 0o644), b"")])
    with pytest.raises(BaselineError, match="device or special file"):
        safe_extract_zip(archive, tmp_path / "out")


def test_zip_bomb_is_stopped_by_the_entry_limit(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", [("zeros.bin", bytes(8 * 1024 * 1024))])
    assert archive.stat().st_size < 64 * 1024  # a small file that inflates 8 MiB
    with pytest.raises(BaselineError, match="'zeros.bin' rejected: .*per-entry limit of 1048576"):
        safe_extract_zip(archive, tmp_path / "out", max_entry_bytes=1024 * 1024)
    assert not (tmp_path / "out").exists()


def test_lying_size_header_is_rejected(tmp_path: Path) -> None:
    # zipfile stops at the declared size, so the 300 kB entry that claims 10 bytes fails its CRC.
    archive = make_zip(tmp_path / "liar.zip", [("big.bin", bytes(300_000))])
    data = bytearray(archive.read_bytes())
    # Patch the declared uncompressed size (local header offset 22, central directory 24) to 10 bytes.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 22:local + 26] = (10).to_bytes(4, "little")
    data[central + 24:central + 28] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(BaselineError, match="'big.bin' rejected: corrupt data"):
        safe_extract_zip(archive, tmp_path / "out", max_entry_bytes=1000)
    assert not (tmp_path / "out").exists()


def test_total_size_limit_counts_all_entries(tmp_path: Path) -> None:
    entries = [(f"part-{i}.bin", bytes(300_000)) for i in range(5)]
    archive = make_zip(tmp_path / "many.zip", entries)
    with pytest.raises(BaselineError, match="exceeds"):
        safe_extract_zip(archive, tmp_path / "out", max_total_bytes=1_000_000)


def test_duplicate_names_and_entry_count(tmp_path: Path) -> None:
    dup = make_zip(tmp_path / "dup.zip", [("record.json", b"{}"), ("./record.json", b"{evil}")])
    with pytest.raises(BaselineError, match="'record.json' rejected: duplicate entry name"):
        safe_extract_zip(dup, tmp_path / "out1")
    clash = make_zip(tmp_path / "clash.zip", [("a", b"file"), ("a/b", b"under a file")])
    with pytest.raises(BaselineError, match="is a file in the same archive"):
        safe_extract_zip(clash, tmp_path / "out2")
    many = make_zip(tmp_path / "many.zip", [(f"f{i}", b"") for i in range(11)])
    with pytest.raises(BaselineError, match="more than 10 entries"):
        safe_extract_zip(many, tmp_path / "out3", max_entries=10)


def test_not_a_zip_and_non_empty_destination(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip")
    with pytest.raises(BaselineError, match="not a readable zip archive"):
        safe_extract_zip(junk, tmp_path / "out")
    good = make_zip(tmp_path / "ok.zip", [("record.json", b"{}")])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(BaselineError, match="not an empty folder"):
        safe_extract_zip(good, busy)
    assert (busy / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        (tar_entry("record.json", tarfile.SYMTYPE, linkname="/etc/passwd"), "symbolic link"),
        (tar_entry("record.json", tarfile.LNKTYPE, linkname="other"), "hard link"),
        (tar_entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0), "device or special file"),
        (tar_entry("null", tarfile.CHRTYPE, devmajor=1, devminor=3), "device or special file"),
        (tar_entry("pipe", tarfile.FIFOTYPE), "device or special file"),
    ],
)
def test_tar_links_and_devices_are_rejected(tmp_path: Path, entry: tarfile.TarInfo, rule: str) -> None:
    archive = make_tar(tmp_path / "bad.tgz", [(tar_entry("ok.txt"), b"fine"), (entry, None)])
    with pytest.raises(BaselineError, match=rule):
        safe_extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tar_traversal_absolute_and_oversize_are_rejected(tmp_path: Path) -> None:
    slip = make_tar(tmp_path / "slip.tgz", [(tar_entry("../../escaped"), b"pwned")])
    with pytest.raises(BaselineError, match="'..' path component"):
        safe_extract_tar(slip, tmp_path / "o1")
    absolute = make_tar(tmp_path / "abs.tgz", [(tar_entry("/tmp/escaped"), b"pwned")])
    with pytest.raises(BaselineError, match="absolute path"):
        safe_extract_tar(absolute, tmp_path / "o2")
    big = make_tar(tmp_path / "big.tgz", [(tar_entry("zeros"), bytes(2 * 1024 * 1024))])
    with pytest.raises(BaselineError, match="'zeros' rejected: declared size"):
        safe_extract_tar(big, tmp_path / "o3", max_entry_bytes=1024 * 1024)
    dup = make_tar(tmp_path / "dup.tgz", [(tar_entry("a"), b"1"), (tar_entry("a"), b"2")])
    with pytest.raises(BaselineError, match="duplicate entry name"):
        safe_extract_tar(dup, tmp_path / "o4")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))
    assert not Path("/tmp/escaped").exists() or Path("/tmp/escaped").read_bytes() != b"pwned"


def test_corrupt_tar_is_a_baseline_error(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "ok.tgz", [(tar_entry("record.json"), random.Random(7).randbytes(100_000))])
    truncated = tmp_path / "cut.tgz"
    truncated.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(BaselineError, match="cut.tgz"):
        safe_extract_tar(truncated, tmp_path / "out")
    assert not (tmp_path / "out").exists()
