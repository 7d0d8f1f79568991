"""The seed's TTL guidelines as named defaults, and TTL validation.

| use case        | TTL      |
|-----------------|----------|
| session         | 7 days   |
| API response    | 5 minutes|
| rate-limit window | 1 minute |
| presence        | 5 minutes|
| temporary data  | 1 hour   |
"""

from __future__ import annotations

import datetime as _dt
from typing import Final

from berthcache._exceptions import InvalidTTLError

__all__ = ["TTL", "TTLLike", "to_seconds"]

TTLLike = int | _dt.timedelta


class TTL:
    """Recommended TTLs in seconds, by use case (``TTL.SESSION`` …)."""

    SESSION: Final = 7 * 24 * 3600
    API_RESPONSE: Final = 5 * 60
    RATE_LIMIT_WINDOW: Final = 60
    PRESENCE: Final = 5 * 60
    TEMPORARY: Final = 3600

    @classmethod
    def as_dict(cls) -> dict[str, int]:
        return {
            "session": cls.SESSION,
            "api_response": cls.API_RESPONSE,
            "rate_limit_window": cls.RATE_LIMIT_WINDOW,
            "presence": cls.PRESENCE,
            "temporary": cls.TEMPORARY,
        }


def to_seconds(ttl: TTLLike, *, name: str = "ttl") -> int:
    """Whole seconds > 0 from an int or timedelta; anything else raises :class:`InvalidTTLError`."""
    if isinstance(ttl, _dt.timedelta):
        seconds = ttl.total_seconds()
        if seconds != int(seconds):
            raise InvalidTTLError(f"{name} must be a whole number of seconds, got {ttl}")
        value = int(seconds)
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        value = ttl
    else:
        raise InvalidTTLError(
            f"{name} must be an int number of seconds or a timedelta, got {type(ttl).__name__}"
        )
    if value <= 0:
        raise InvalidTTLError(f"{name} must be positive, got {value}")
    return value
