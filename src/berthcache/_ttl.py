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

__all__ = ["MAX_TTL_MS", "MAX_TTL_SECONDS", "TTL", "TTLLike", "to_seconds"]

TTLLike = int | _dt.timedelta

# Redis keeps a key's expiry as an absolute Unix time in milliseconds, a signed 64-bit integer:
# SET EX / EXPIRE / PEXPIRE refuse ("invalid expire time") a TTL whose ``ttl_ms + now_ms``
# would overflow it (expire.c, t_string.c). Measured on Redis 7.0 in November 2026: SET EX and
# EXPIRE accept exactly ``(2**63 - 1 - now_ms) // 1000`` seconds (9_223_370_240_861_076), one
# more is refused. The bound below leaves room for any server clock before the year 3000, so a
# TTL accepted here is accepted by every server — checked before anything is sent, so nothing
# is written half-way (a rate-limit counter without expiry, a session index that never expires).
_LLONG_MAX = 2**63 - 1
_YEAR_3000_MS = 32_503_680_000_000
#: The longest TTL berthcache sends (about 292 million years): Redis's own limit with margin.
MAX_TTL_SECONDS: Final = (_LLONG_MAX - _YEAR_3000_MS) // 1000
#: The same bound in milliseconds (PEXPIRE, SET PX).
MAX_TTL_MS: Final = MAX_TTL_SECONDS * 1000
_SECOND = _dt.timedelta(seconds=1)


class TTL:
    """Recommended TTLs in seconds, by use case (``TTL.SESSION`` …)."""

    SESSION: Final = 7 * 24 * 3600
    API_RESPONSE: Final = 5 * 60
    RATE_LIMIT_WINDOW: Final = 60
    PRESENCE: Final = 5 * 60
    TEMPORARY: Final = 3600
    #: Not a guideline but the limit: the longest TTL berthcache accepts (MAX_TTL_SECONDS).
    MAX: Final = MAX_TTL_SECONDS

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
    """Whole seconds in ``1..MAX_TTL_SECONDS`` from an int or timedelta; anything else raises
    :class:`InvalidTTLError` naming ``name`` (the argument), before anything is sent."""
    if isinstance(ttl, _dt.timedelta):
        value, rest = divmod(ttl, _SECOND)  # exact: total_seconds() is a float
        if rest:
            raise InvalidTTLError(f"{name} must be a whole number of seconds, got {ttl}")
    elif isinstance(ttl, int) and not isinstance(ttl, bool):
        value = ttl
    else:
        raise InvalidTTLError(
            f"{name} must be an int number of seconds or a timedelta, got {type(ttl).__name__}"
        )
    if value <= 0:
        raise InvalidTTLError(f"{name} must be positive, got {value}")
    if value > MAX_TTL_SECONDS:
        raise InvalidTTLError(
            f"{name} must be at most {MAX_TTL_SECONDS} seconds (Redis keeps expiry times as "
            f"64-bit milliseconds since 1970), got {value}"
        )
    return value
