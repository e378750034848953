"""The placeholders of `service.command` (and `{output}` of `service.build`): what they stand for, how they are filled.

Only these exact words are replaced, by plain text substitution: other braces in an argument (a Go template, JSON)
stay as they are, and nothing is ever passed through a shell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

BINARY = "{binary}"  # the executable service.build wrote (perfgate builds it, or `--builds DIR` holds it)
ADDRESS = "{address}"  # 127.0.0.1:PORT for gRPC, a free loopback port perfgate picked
PPROF_ADDRESS = "{pprof_address}"  # 127.0.0.1:PORT for net/http/pprof, picked likewise
SERVICE_PLACEHOLDERS = (BINARY, ADDRESS, PPROF_ADDRESS)
OUTPUT = "{output}"  # in service.build: where the build writes the executable


def uses(command: Sequence[str], placeholder: str) -> bool:
    return any(placeholder in part for part in command)


def fill(command: Sequence[str], values: Mapping[str, str]) -> tuple[str, ...]:
    """The command with each placeholder in `values` replaced in every argument."""
    filled = []
    for part in command:
        for placeholder, value in values.items():
            part = part.replace(placeholder, value)
        filled.append(part)
    return tuple(filled)
