"""Safe extraction of baseline archives (.zip from GitHub artifacts, .tar.gz/.tgz from anywhere).

An archive is untrusted input: a pull request from a fork can produce one. Every entry is
checked before a byte is written: no absolute paths, no `..`, no links or device files, no
duplicate names, and bounded entry count and sizes. Sizes are counted on the decompressed
bytes as they stream, not taken from the headers, so a lying header cannot smuggle a bomb.

Extraction goes to a fresh staging folder next to `dest` that is renamed into place only when
everything succeeded, so a rejected archive leaves nothing behind; `discarded_on_failure` does the
same for an archive that extracts fine but does not hold a usable record.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from perfgate.errors import BaselineError

# The one extraction cap (docs/security.md): an archive or artifact yields at most this many bytes
# once decompressed, in at most DEFAULT_MAX_ENTRIES entries. Single files are capped again when read.
EXTRACTION_CAP_BYTES = 1024**3
DEFAULT_MAX_TOTAL_BYTES = EXTRACTION_CAP_BYTES
DEFAULT_MAX_ENTRY_BYTES = EXTRACTION_CAP_BYTES
DEFAULT_MAX_ENTRIES = 10_000
_CHUNK_BYTES = 64 * 1024


def safe_extract_zip(
    zip_path: str | Path,
    dest: str | Path,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> Path:
    """Extract `zip_path` into `dest` (absent or an empty folder) and return `dest`.

    Raises BaselineError naming the entry and the rule it broke; nothing is left in `dest` then.
    """
    archive = Path(zip_path)
    limits = _Limits(archive.name, max_total_bytes, max_entry_bytes, max_entries)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BaselineError(f"{archive.name}: not a readable zip archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        limits.check_count(len(infos))
        names = _NameTracker(limits)
        planned = [(info, _check_zip_entry(limits, info)) for info in infos]
        for info, rel in planned:
            names.add(rel, is_dir=info.is_dir())
        declared = sum(info.file_size for info in infos)
        if declared > max_total_bytes:
            raise limits.error(None, f"declared total {declared} bytes exceeds {max_total_bytes}")
        with _staging(Path(dest)) as root:
            for info, rel in planned:
                if info.is_dir():
                    _make_dir(root, rel)
                    continue
                try:
                    with zf.open(info) as src:
                        _write_stream(limits, root, rel, src)
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                    raise limits.error(rel, f"corrupt data ({exc})") from None
    return Path(dest)


def safe_extract_tar(
    tar_path: str | Path,
    dest: str | Path,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> Path:
    """Extract a tar archive (plain, .gz, .bz2 or .xz) into `dest` with the same rules as zips."""
    archive = Path(tar_path)
    limits = _Limits(archive.name, max_total_bytes, max_entry_bytes, max_entries)
    try:
        tf = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BaselineError(f"{archive.name}: not a readable tar archive ({exc})") from None
    names = _NameTracker(limits)
    with tf, _staging(Path(dest)) as root:
        try:
            for count, member in enumerate(tf, start=1):
                limits.check_count(count)
                rel = _check_tar_entry(limits, member)
                names.add(rel, is_dir=member.isdir())
                if member.isdir():
                    _make_dir(root, rel)
                    continue
                src = tf.extractfile(member)
                if src is None:
                    raise limits.error(rel, "entry has no readable data")
                with src:
                    _write_stream(limits, root, rel, src)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise BaselineError(f"{archive.name}: cannot read the tar archive ({exc})") from None
    return Path(dest)


class _Limits:
    """Rules and running totals for one extraction; builds the error messages."""

    def __init__(self, archive_name: str, max_total_bytes: int, max_entry_bytes: int, max_entries: int):
        self.archive_name = archive_name
        self.max_total_bytes = max_total_bytes
        self.max_entry_bytes = max_entry_bytes
        self.max_entries = max_entries
        self.total_bytes = 0

    def error(self, entry: PurePosixPath | str | None, rule: str) -> BaselineError:
        where = f"entry {str(entry)!r}" if entry is not None else "archive"
        return BaselineError(f"{self.archive_name}: {where} rejected: {rule}")

    def check_count(self, count: int) -> None:
        if count > self.max_entries:
            raise self.error(None, f"more than {self.max_entries} entries")

    def count(self, entry: PurePosixPath, entry_bytes: int, new_bytes: int) -> None:
        self.total_bytes += new_bytes
        if entry_bytes > self.max_entry_bytes:
            raise self.error(entry, f"larger than the per-entry limit of {self.max_entry_bytes} bytes")
        if self.total_bytes > self.max_total_bytes:
            raise self.error(entry, f"archive total exceeds the limit of {self.max_total_bytes} bytes")


class _NameTracker:
    """Rejects duplicate names and a file that is also used as a folder by another entry."""

    def __init__(self, limits: _Limits):
        self.limits = limits
        self.files: set[PurePosixPath] = set()
        self.dirs: set[PurePosixPath] = set()

    def add(self, rel: PurePosixPath, *, is_dir: bool) -> None:
        if rel in self.files:
            raise self.limits.error(rel, "duplicate entry name")
        if not is_dir and rel in self.dirs:
            raise self.limits.error(rel, "a folder of the same name is in the archive")
        for parent in rel.parents:
            if parent in self.files:
                raise self.limits.error(rel, f"its parent {str(parent)!r} is a file in the same archive")
        self.dirs.update(p for p in rel.parents if p != PurePosixPath("."))
        (self.dirs if is_dir else self.files).add(rel)


def _safe_relative_path(limits: _Limits, name: str) -> PurePosixPath:
    if not name or name in ("/", "."):
        raise limits.error(name, "empty entry name")
    if "\x00" in name or any(ord(ch) < 0x20 for ch in name):
        raise limits.error(name, "control character in entry name")
    if "\\" in name:
        raise limits.error(name, "backslash in entry name (paths must use '/')")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise limits.error(name, "absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise limits.error(name, "'..' path component (path traversal)")
    if not parts:
        raise limits.error(name, "empty entry name")
    return PurePosixPath(*parts)


def _check_zip_entry(limits: _Limits, info: zipfile.ZipInfo) -> PurePosixPath:
    rel = _safe_relative_path(limits, info.filename)
    mode = info.external_attr >> 16
    file_type = stat.S_IFMT(mode)
    if info.create_system == 3 and file_type:  # 3 = Unix: the high bits carry st_mode
        if stat.S_ISLNK(mode):
            raise limits.error(rel, "symbolic link")
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise limits.error(rel, "device or special file")
    if info.flag_bits & 0x1:
        raise limits.error(rel, "encrypted entry")
    if not info.is_dir() and info.file_size > limits.max_entry_bytes:
        raise limits.error(rel, f"declared size {info.file_size} exceeds the per-entry limit of "
                                f"{limits.max_entry_bytes} bytes")
    return rel


def _check_tar_entry(limits: _Limits, member: tarfile.TarInfo) -> PurePosixPath:
    rel = _safe_relative_path(limits, member.name)
    if member.issym():
        raise limits.error(rel, "symbolic link")
    if member.islnk():
        raise limits.error(rel, "hard link")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise limits.error(rel, "device or special file")
    if member.issparse():
        raise limits.error(rel, "sparse file")
    if not (member.isreg() or member.isdir()):
        raise limits.error(rel, f"unsupported entry type {member.type!r}")
    if member.isreg() and member.size > limits.max_entry_bytes:
        raise limits.error(rel, f"declared size {member.size} exceeds the per-entry limit of "
                                f"{limits.max_entry_bytes} bytes")
    return rel


def _make_dir(root: Path, rel: PurePosixPath) -> None:
    target = _inside(root, rel)
    target.mkdir(parents=True, exist_ok=True)


def _write_stream(limits: _Limits, root: Path, rel: PurePosixPath, src: BinaryIO) -> None:
    target = _inside(root, rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(target, "xb") as out:  # "x": an existing file is never overwritten
        while chunk := src.read(_CHUNK_BYTES):
            written += len(chunk)
            limits.count(rel, written, len(chunk))
            out.write(chunk)


def _inside(root: Path, rel: PurePosixPath) -> Path:
    # Names were already checked; this guards against anything the checks did not foresee.
    target = root.joinpath(*rel.parts)
    if not target.resolve().is_relative_to(root.resolve()):
        raise BaselineError(f"entry {str(rel)!r} rejected: resolves outside the destination")
    return target


@contextmanager
def discarded_on_failure(folder: Path) -> Iterator[Path]:
    """Remove `folder` (what an archive was extracted to) when the block fails: nothing is left behind."""
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """A fresh folder beside `dest`; moved to `dest` on success, removed on any failure."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BaselineError(f"cannot extract into {dest}: it exists and is not an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        yield staging
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

