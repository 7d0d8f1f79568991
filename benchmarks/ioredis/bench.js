'use strict';
/**
 * Driven by benchmarks/ioredis_side.py over stdin/stdout, one JSON object per line, so the
 * Python benchmark can alternate rounds between this process and its own sides on one server.
 *
 *   -> {"op": "config", "host": ..., "port": ..., "password": ..., "caFile": ..., "prefix": ...,
 *       "rateLimitScript": "<berthcache's rate_limit.lua, for sameCommands>"}
 *   <- {"ok": true, "ioredis": "5.11.1", "node": "v20..."}
 *   -> {"op": "run", "workload": "ping", "ops": 4000, "autoPipelining": false, "concurrency": 64,
 *       "sameCommands": false}
 *   <- {"ok": true, "ops": 4000, "seconds": 0.41}
 *   -> {"op": "memory", "callers": 10000, "rounds": 3}
 *   <- {"ok": true, "callers": 10000, "ops_per_s": ..., "rss_delta": ..., "heap_delta": ...}
 *
 * The password arrives on stdin, never on the command line. Errors answer {"ok": false, "error"}.
 */
const readline = require('node:readline');
const { SeedCache, SameCommandsCache, createClient } = require('./cache');

const SESSION_DATA = { role: 'nurse', name: 'Ada', unit: '3B', shift: 'night' };
let config = null;
const caches = new Map();

/** The seed's module (one client per auto-pipelining mode), or with ``sameCommands`` the
 * commands berthcache sends, on a client of its own (config.rateLimitScript: its Lua). */
async function cacheFor(autoPipelining, sameCommands = false) {
  const mode = `${autoPipelining ? 'autopipelining' : 'default'}${sameCommands ? '-same' : ''}`;
  if (!caches.has(mode)) {
    if (sameCommands && !config.rateLimitScript) throw new Error('no rateLimitScript in config');
    const redis = createClient({ ...config, autoPipelining });
    await new Promise((resolve, reject) => {
      redis.once('ready', resolve);
      redis.once('error', reject);
    });
    caches.set(
      mode,
      sameCommands
        ? new SameCommandsCache(redis, config.prefix, config.rateLimitScript)
        : new SeedCache(redis, config.prefix),
    );
  }
  return caches.get(mode);
}

const WORKLOADS = {
  async ping(cache, ops) {
    for (let i = 0; i < ops; i++) {
      const health = await cache.checkHealth();
      if (!health.healthy) throw new Error('PING failed');
    }
    return ops;
  },
  async set_get(cache, ops) {
    const pairs = Math.floor(ops / 2);
    for (let i = 0; i < pairs; i++) {
      const key = `k${i % 500}`;
      await cache.set(key, 'value', 300);
      await cache.get(key);
    }
    return pairs * 2;
  },
  async session_set_get(cache, ops) {
    const pairs = Math.floor(ops / 2);
    for (let i = 0; i < pairs; i++) {
      const sessionId = await cache.createSession(i % 500, SESSION_DATA);
      await cache.getSession(sessionId);
    }
    return pairs * 2;
  },
  async rate_limit_check(cache, ops) {
    for (let i = 0; i < ops; i++) {
      await cache.checkRateLimit(`10.0.${i % 200}.${i % 250}`, '/api/clients');
    }
    return ops;
  },
  async api_cache_get_async64(cache, ops, concurrency) {
    const each = Math.floor(ops / concurrency);
    const worker = async () => {
      for (let i = 0; i < each; i++) {
        const value = await cache.getCachedApiResponse('clients:list', 42);
        if (value === null) throw new Error('the API response is not cached');
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return each * concurrency;
  },
};

async function run(message) {
  const workload = WORKLOADS[message.workload];
  if (!workload) throw new Error(`unknown workload ${message.workload}`);
  const cache = await cacheFor(Boolean(message.autoPipelining), Boolean(message.sameCommands));
  const start = process.hrtime.bigint();
  const ops = await workload(cache, message.ops, message.concurrency || 64);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { ok: true, ops, seconds };
}

/** N callers each awaiting one GET at once: memory while all are pending, and ops/s. */
async function memory(message) {
  const cache = await cacheFor(false);
  const callers = message.callers;
  await cache.set('memory:probe', 'x'.repeat(32), 300);
  const rates = [];
  let rssDelta = 0;
  let heapDelta = 0;
  for (let round = 0; round < (message.rounds || 3); round++) {
    if (global.gc) global.gc();
    const before = process.memoryUsage();
    const start = process.hrtime.bigint();
    const pending = new Array(callers);
    for (let i = 0; i < callers; i++) pending[i] = cache.get('memory:probe');
    const during = process.memoryUsage();
    await Promise.all(pending);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(callers / seconds);
    rssDelta = Math.max(rssDelta, during.rss - before.rss);
    heapDelta = Math.max(heapDelta, during.heapUsed - before.heapUsed);
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  return { ok: true, callers, ops_per_s: median, rss_delta: rssDelta, heap_delta: heapDelta };
}

async function handle(message) {
  if (message.op === 'config') {
    config = message;
    await cacheFor(false);
    return { ok: true, ioredis: require('ioredis/package.json').version, node: process.version };
  }
  if (config === null) throw new Error('send {"op": "config"} first');
  if (message.op === 'run') return run(message);
  if (message.op === 'memory') return memory(message);
  if (message.op === 'quit') {
    for (const cache of caches.values()) await cache.redis.quit();
    caches.clear();
    return { ok: true };
  }
  throw new Error(`unknown op ${message.op}`);
}

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(async () => {
    let reply;
    try {
      reply = await handle(JSON.parse(line));
    } catch (error) {
      reply = { ok: false, error: String(error && error.message ? error.message : error) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
    if (reply.ok && JSON.parse(line).op === 'quit') process.exit(0);
  });
});
lines.on('close', () => {
  queue.then(() => process.exit(0));
});
