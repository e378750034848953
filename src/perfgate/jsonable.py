"""Frozen records -> JSON-ready values (dicts, lists, numbers, strings), for files and digests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def jsonable(obj: Any) -> Any:
    """Objects with to_dict() use it; other dataclasses become dicts; mappings and sequences recurse."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return {name: jsonable(getattr(obj, name)) for name in obj.__dataclass_fields__}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [jsonable(v) for v in obj]
    return obj
