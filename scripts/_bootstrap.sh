# shellcheck shell=bash
# Sourced by ./scripts/conformance, ./scripts/test and ./scripts/bench: makes .venv current and
# makes sure a redis-server >= 7 is on PATH. Idempotent and quiet when nothing needs doing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

_bc_log() { printf '[berthcache] %s\n' "$*" >&2; }

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        _bc_log "creating virtual environment in .venv"
        "$PY" -m venv "$VENV"
    fi
    # Reinstall only when pyproject.toml changed since the last install.
    local stamp="$VENV/.berthcache-installed" want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        _bc_log "installing Python dependencies into .venv (pyproject.toml changed)"
        "$VENV/bin/python" -m pip install -q --upgrade pip uv >/dev/null
        "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -e "$ROOT[dev]"
        echo "$want" >"$stamp"
    fi
}

_redis_major() {
    redis-server --version 2>/dev/null | sed -n 's/.*v=\([0-9]*\)\..*/\1/p'
}

ensure_redis_server() {
    local major
    major="$(_redis_major || true)"
    if [ -n "$major" ] && [ "$major" -ge 7 ]; then
        return 0
    fi
    local cmd="apt-get update && apt-get install -y --no-install-recommends redis-server"
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        _bc_log "redis-server >= 7 not found; installing Debian's redis-server package"
        DEBIAN_FRONTEND=noninteractive bash -c "$cmd" >/dev/null
        # The package starts a system service on 6379 where it can; the harness never uses it.
        major="$(_redis_major || true)"
        if [ -z "$major" ] || [ "$major" -lt 7 ]; then
            _bc_log "Debian's redis-server is older than 7 (found: ${major:-none}); install Redis 7 and retry"
            exit 2
        fi
    else
        _bc_log "redis-server >= 7 is required (found: ${major:-none}). Install it with:"
        _bc_log "    sudo $cmd"
        _bc_log "or point REDIS_SERVER at a redis-server 7 binary."
        exit 2
    fi
}

# ioredis into benchmarks/ioredis/node_modules (npm ci from the committed lock file) when node and
# npm are on PATH and the lock file changed; without them (or when npm fails) the ioredis side of
# the benchmark, and its tests, are skipped with a one-line reason.
ensure_ioredis() {
    local dir="$ROOT/benchmarks/ioredis" want stamp
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        return 0 # the benchmark prints the one-line skip
    fi
    stamp="$dir/node_modules/.berthcache-installed"
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    _bc_log "installing ioredis into benchmarks/ioredis/node_modules (npm ci)"
    # Bounded: a registry that does not answer must not hold up a test run.
    if (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
        echo "$want" >"$stamp"
    else
        rm -rf "$dir/node_modules" # no half-installed ioredis: skipped, not failing
        _bc_log "npm ci failed in benchmarks/ioredis: the ioredis side will be skipped"
    fi
}
