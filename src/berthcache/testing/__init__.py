"""Test tooling for berthcache and the apps that use it: a local Redis 7 harness (TLS, ACL
users, primary + replica behind a movable endpoint), test targets, and the pytest plugin
(:mod:`berthcache.testing.plugin`, loaded automatically by pytest).

    from berthcache.testing import LocalRedis

    with LocalRedis() as group:                 # TLS + AUTH + replica, gone on exit
        client = group.admin_client()
        group.failover()
"""

from berthcache.testing._asgi import serve_asgi
from berthcache.testing._certs import TLSFiles, make_tls_files
from berthcache.testing._harness import LocalRedis
from berthcache.testing._proxy import TCPProxy
from berthcache.testing._server import (
    ACLUser,
    HarnessError,
    RedisServer,
    RedisServerNotFoundError,
    RedisServerStartError,
    app_user_rules,
    find_redis_server,
    free_port,
)
from berthcache.testing._target import CAPABILITIES, Target, UsageError
from berthcache.testing._targets import TargetChoice, choose_target, choose_target_from_args

__all__ = [
    "CAPABILITIES",
    "ACLUser",
    "HarnessError",
    "LocalRedis",
    "RedisServer",
    "RedisServerNotFoundError",
    "RedisServerStartError",
    "TCPProxy",
    "TLSFiles",
    "Target",
    "TargetChoice",
    "UsageError",
    "app_user_rules",
    "choose_target",
    "choose_target_from_args",
    "find_redis_server",
    "free_port",
    "make_tls_files",
    "serve_asgi",
]
