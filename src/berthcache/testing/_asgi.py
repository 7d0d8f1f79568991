"""Serve an ASGI app (the ``/health`` route, say) under a real uvicorn server for a test.

async with serve_asgi(health_app(cache)) as base_url:
    response = await httpx.AsyncClient().get(f"{base_url}/health")
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from berthcache.testing._server import free_port

__all__ = ["serve_asgi"]


@contextlib.asynccontextmanager
async def serve_asgi(
    app: Any,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - bounds start and stop; the body is the caller's
    lifespan: Literal["auto", "on", "off"] = "on",
) -> AsyncIterator[str]:
    """Run ``app`` with uvicorn on a free 127.0.0.1 port in this event loop and yield its base
    URL; the server is shut down (waited for, up to ``timeout``) whatever the body does."""
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - uvicorn is in the testing extra
        raise RuntimeError("serve_asgi needs uvicorn: pip install 'berthcache[testing]'") from exc
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(timeout):
            while not server.started:  # uvicorn offers no awaitable for "listening"
                if task.done():
                    task.result()  # it failed to start: raise its error
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(timeout):
            await task
