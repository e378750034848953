"""Is an executable self-contained? The Action builds on the runner and runs the binary in perfgate's container,
where the runner's shared libraries are not: a dynamically linked ELF names its loader in a PT_INTERP header."""

from __future__ import annotations

import struct
from pathlib import Path

PT_INTERP = 3
MAX_HEADERS = 512
MAX_INTERP_BYTES = 4096


def interpreter(path: Path) -> str | None:
    """The program interpreter a binary asks for: the ELF loader of a dynamic binary (e.g.
    /lib64/ld-linux-x86-64.so.2), the `#!` line's program of a script, None for a static binary or unknown file."""
    try:
        with open(path, "rb") as binary:
            head = binary.read(64)
            if head.startswith(b"#!"):
                line = (head + binary.read(192)).split(b"\n", 1)[0][2:].strip()
                return line.split()[0].decode("utf-8", errors="replace") if line else None
            if not head.startswith(b"\x7fELF") or len(head) < 64:
                return None
            return _elf_interpreter(binary, head)
    except (OSError, struct.error):
        return None


def _elf_interpreter(binary, head: bytes) -> str | None:
    is64, endian = head[4] == 2, "<" if head[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(endian + "Q", head, 0x20)
        entsize, count = struct.unpack_from(endian + "HH", head, 0x36)
    else:
        phoff, = struct.unpack_from(endian + "I", head, 0x1C)
        entsize, count = struct.unpack_from(endian + "HH", head, 0x2A)
    for index in range(min(count, MAX_HEADERS)):
        binary.seek(phoff + index * entsize)
        entry = binary.read(entsize)
        if len(entry) < (56 if is64 else 32):
            return None
        kind, = struct.unpack_from(endian + "I", entry, 0)
        if kind != PT_INTERP:
            continue
        if is64:
            offset, size = struct.unpack_from(endian + "Q", entry, 8)[0], struct.unpack_from(endian + "Q", entry, 32)[0]
        else:
            offset, size = struct.unpack_from(endian + "I", entry, 4)[0], struct.unpack_from(endian + "I", entry, 16)[0]
        binary.seek(offset)
        return binary.read(min(size, MAX_INTERP_BYTES)).split(b"\0", 1)[0].decode("utf-8", errors="replace")
    return None
