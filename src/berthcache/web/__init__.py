"""berthcache for Starlette and FastAPI apps (``pip install 'berthcache[web]'``).

- :func:`health_app` — the ``/health`` route (the cache module's, re-exported), mounted
  (``app.mount("/health", health_app(cache, path="/"))``) or routed.
- :class:`RateLimitMiddleware` and the :class:`RateLimit` dependency — the cache's rate limiter
  with the ``RateLimit-*`` / ``Retry-After`` headers and a 429 JSON body; key functions
  :func:`client_ip` and :func:`forwarded_client_ip`.
- :func:`cache_response` — endpoint responses in the cache's response cache, with
  ``Cache-Control``, ``ETag`` and 304.
- :class:`SessionMiddleware`, :class:`Session`, :func:`get_session` — cookie ↔ session store.

Every helper takes a :class:`~berthcache.Cache` or an :class:`~berthcache.AsyncCache` (the sync
one is called in a worker thread), or a function returning one, called on first use — so a
cache made in the app's lifespan works. FastAPI is not needed: it is Starlette.
"""

from berthcache import health_app
from berthcache.web._common import client_ip, forwarded_client_ip
from berthcache.web._ratelimit import RateLimit, RateLimitMiddleware, rate_limit_headers
from berthcache.web._responses import cache_response
from berthcache.web._sessions import Session, SessionMiddleware, get_session

__all__ = [
    "RateLimit",
    "RateLimitMiddleware",
    "Session",
    "SessionMiddleware",
    "cache_response",
    "client_ip",
    "forwarded_client_ip",
    "get_session",
    "health_app",
    "rate_limit_headers",
]
