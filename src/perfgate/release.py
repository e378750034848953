"""Which commit of the Action the examples, the docs and `perfgate init` pin.

One place: scripts/release.py pin-examples rewrites it together with every `uses: perfgate/perfgate@...`
line in examples/, README.md and docs/ after each release (docs/action.md "Versions"); a test checks
that they agree. Until the first release the pin is a commit of main, marked so in its comment.
"""

from __future__ import annotations

ACTION = "perfgate/perfgate"  # where the Action is published (docs/action.md)
ACTION_COMMIT = "4fde727780d8ae8fd50dbaab8824c9fe043e0677"
ACTION_VERSION = "main, unreleased"
SCHEMA_URL = f"https://raw.githubusercontent.com/{ACTION}/v1/schema/perfgate.schema.json"
DOCS_URL = f"https://github.com/{ACTION}/blob/v1/docs"


def action_uses() -> str:
    """The `uses:` value with its version comment, as zizmor wants a pin: `owner/repo@<sha> # <version>`."""
    return f"{ACTION}@{ACTION_COMMIT} # {ACTION_VERSION}"
