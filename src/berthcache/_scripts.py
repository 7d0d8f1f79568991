"""The Lua scripts shipped in ``berthcache/resources`` (rate limiting, lock release).

Read once per process from the installed package, so they work from a wheel as from a checkout.
"""

from __future__ import annotations

import importlib.resources
from functools import cache

__all__ = ["load_script"]


@cache
def load_script(name: str) -> str:
    """The text of a Lua script shipped in ``berthcache/resources`` (read once)."""
    return (
        importlib.resources.files("berthcache")
        .joinpath("resources")
        .joinpath(name)
        .read_text("utf-8")
    )
