"""Write src/perfgate/bpftrace/syscalls.ARCH.tsv (number, name) from the Linux UAPI headers.

syscalls.bt reports a system call by its number, which differs between architectures; perfgate names it
with these tables. Run on a Debian/Ubuntu machine with linux-libc-dev and cpp installed:

    python3 scripts/gen_syscall_tables.py            # rewrite the tables
    python3 scripts/gen_syscall_tables.py --check    # exit 1 when a table differs from the headers

x86_64 comes from asm/unistd_64.h; aarch64 from asm-generic/unistd.h with the switches arm64's own
asm/unistd.h sets before including it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "perfgate" / "bpftrace"
ARM64_SWITCHES = ("__ARCH_WANT_RENAMEAT", "__ARCH_WANT_NEW_STAT", "__ARCH_WANT_SET_GET_RLIMIT",
                  "__ARCH_WANT_TIME32_SYSCALLS", "__ARCH_WANT_SYS_CLONE3", "__ARCH_WANT_MEMFD_SECRET")
SOURCES = {
    "x86_64": ("#include <x86_64-linux-gnu/asm/unistd_64.h>\n", ()),
    "aarch64": ("#define __BITS_PER_LONG 64\n#include <asm-generic/unistd.h>\n", ARM64_SWITCHES),
}
DEFINE = re.compile(r"#define (__NR(?:3264)?_\w+) (\w+)$")


def table(arch: str) -> dict[int, str]:
    """number -> name, every __NR_name macro the preprocessor ends with, resolved to its number."""
    include, switches = SOURCES[arch]
    program = "".join(f"#define {switch}\n" for switch in switches) + include
    macros = subprocess.run(["cpp", "-dM", "-P", "-"], input=program, capture_output=True, text=True,
                            check=True, timeout=60).stdout
    defined = dict(match.groups() for line in macros.splitlines() if (match := DEFINE.match(line.strip())))

    def number(value: str, depth: int = 0) -> int | None:
        if value.isdigit():
            return int(value)
        return number(defined[value], depth + 1) if value in defined and depth < 4 else None

    names: dict[int, str] = {}
    for macro, value in sorted(defined.items()):
        if not macro.startswith("__NR_") or macro in ("__NR_syscalls", "__NR_arch_specific_syscall"):
            continue
        nr = number(value)
        if nr is not None:
            names.setdefault(nr, macro[len("__NR_"):])
    return dict(sorted(names.items()))


def render(arch: str) -> str:
    header = (f"# Linux system call numbers on {arch} (scripts/gen_syscall_tables.py, from the UAPI headers)\n")
    return header + "".join(f"{nr}\t{name}\n" for nr, name in table(arch).items())


def main(argv: list[str]) -> int:
    stale = []
    for arch in SOURCES:
        path = OUT / f"syscalls.{arch}.tsv"
        text = render(arch)
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        print("stale: " + ", ".join(stale) + "; run python3 scripts/gen_syscall_tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
