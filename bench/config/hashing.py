"""The one canonical JSON hash: configuration hashes, fingerprints and cache keys all use it."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, anything unknown as its ``str``.

    >>> canonical_json({"b": 1, "a": [1, 2]})
    '{"a":[1,2],"b":1}'
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(obj: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``obj``.

    >>> stable_hash({"a": 1}) == stable_hash({"a": 1.0 if False else 1})
    True
    """
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()
