"""Transitional re-exports for :mod:`berthcache.testing._stack` until it imports from the new
homes: stack outputs are :mod:`berthcache.ops._stack_outputs`, connecting is
:mod:`berthcache.ops._connection`. Nothing in ``berthcache.ops`` imports this module; delete it
once ``testing/_stack.py`` no longer does.
"""

from __future__ import annotations

from berthcache.ops._connection import default_ca_bundle, resolve_connection
from berthcache.ops._stack_outputs import load_outputs

__all__ = ["default_ca_bundle", "load_outputs", "resolve_connection"]
