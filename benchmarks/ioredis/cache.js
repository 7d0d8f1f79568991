'use strict';
/**
 * The seed's cache module, as its TypeScript/ioredis source would compile: one shared ioredis
 * client, keys under the "berthcare:" prefix, and the helpers the benchmark times. Written for
 * the benchmark only (./scripts/bench drives bench.js); berthcache itself never loads it.
 *
 * What it does is what the seed does, command for command:
 *   sessions     SETEX {prefix}session:user-{id}-session-{uuid} 604800 JSON, then GET + JSON.parse
 *   rate limit   INCR {prefix}ratelimit:{ip}:{endpoint}, then EXPIRE 60 on the first hit
 *   API cache    GET {prefix}api:{endpoint}:{userId} + JSON.parse
 *   checkHealth  a PING timed with performance.now()
 *   set / get    SETEX (or SET without a TTL) / GET
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
const Redis = require('ioredis');

const SESSION_TTL = 7 * 24 * 60 * 60;
const API_TTL = 5 * 60;
const RATE_LIMIT = 100;
const RATE_WINDOW = 60;

/** The seed's connection: retry 50 ms per attempt capped at 2 s, 3 retries per request. */
function createClient(config) {
  const options = {
    host: config.host,
    port: config.port,
    password: config.password || undefined,
    db: 0,
    connectionName: 'berthcache-bench-ioredis',
    maxRetriesPerRequest: 3,
    retryStrategy: (times) => Math.min(times * 50, 2000),
    // The seed leaves ioredis's default (off); the benchmark also reports it on.
    enableAutoPipelining: Boolean(config.autoPipelining),
  };
  if (config.caFile) {
    options.tls = { ca: fs.readFileSync(config.caFile) };
  }
  return new Redis(options);
}

class SeedCache {
  constructor(redis, prefix) {
    this.redis = redis;
    this.prefix = prefix || 'berthcare:';
  }

  key(...parts) {
    return this.prefix + parts.join(':');
  }

  async set(key, value, ttl) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (ttl) {
      await this.redis.setex(this.key(key), ttl, text);
    } else {
      await this.redis.set(this.key(key), text);
    }
  }

  async get(key, parseJson = false) {
    const value = await this.redis.get(this.key(key));
    if (value === null) return null;
    return parseJson ? JSON.parse(value) : value;
  }

  async createSession(userId, data) {
    const sessionId = `user-${userId}-session-${crypto.randomUUID()}`;
    await this.redis.setex(this.key('session', sessionId), SESSION_TTL, JSON.stringify(data));
    return sessionId;
  }

  async getSession(sessionId) {
    const value = await this.redis.get(this.key('session', sessionId));
    return value === null ? null : JSON.parse(value);
  }

  async checkRateLimit(ip, endpoint) {
    const key = this.key('ratelimit', ip, endpoint);
    const count = await this.redis.incr(key);
    if (count === 1) {
      await this.redis.expire(key, RATE_WINDOW);
    }
    return { allowed: count <= RATE_LIMIT, remaining: Math.max(0, RATE_LIMIT - count) };
  }

  async cacheApiResponse(endpoint, userId, response) {
    await this.redis.setex(this.key('api', endpoint, userId), API_TTL, JSON.stringify(response));
  }

  async getCachedApiResponse(endpoint, userId) {
    const value = await this.redis.get(this.key('api', endpoint, userId));
    return value === null ? null : JSON.parse(value);
  }

  async checkHealth() {
    const start = performance.now();
    try {
      await this.redis.ping();
      return { healthy: true, latency: performance.now() - start };
    } catch (error) {
      return { healthy: false, latency: performance.now() - start };
    }
  }
}

/**
 * Not the seed: the commands berthcache sends for the same two calls, on an ioredis client
 * with the seed's options, so the benchmark can show which part of a gap is the client and which the work.
 *   sessions     MULTI SET EX + SADD {prefix}session-index:user-{id} + EXPIRE NX + EXPIRE GT
 *                EXEC, then GET + JSON.parse
 *   rate limit   EVALSHA of berthcache's rate_limit.lua (EVAL on NOSCRIPT: ioredis's
 *                defineCommand): count and expiry atomically, and the time left
 */
class SameCommandsCache extends SeedCache {
  constructor(redis, prefix, rateLimitScript) {
    super(redis, prefix);
    redis.defineCommand('berthcacheRateLimit', { numberOfKeys: 1, lua: rateLimitScript });
  }

  async createSession(userId, data) {
    const user = `user-${userId}`;
    const sessionId = `${user}-session-${crypto.randomUUID()}`;
    const key = this.key('session', sessionId);
    const index = this.key('session-index', user);
    const replies = await this.redis
      .multi()
      .set(key, JSON.stringify(data), 'EX', SESSION_TTL)
      .sadd(index, sessionId)
      .expire(index, SESSION_TTL, 'NX')
      .expire(index, SESSION_TTL, 'GT')
      .exec();
    for (const [error] of replies) if (error) throw error;
    return sessionId;
  }

  async checkRateLimit(ip, endpoint) {
    const key = this.key('ratelimit', ip, endpoint);
    const [count, pttl] = await this.redis.berthcacheRateLimit(key, RATE_WINDOW * 1000);
    return {
      allowed: count <= RATE_LIMIT,
      remaining: Math.max(0, RATE_LIMIT - count),
      resetAfter: pttl > 0 ? pttl / 1000 : 0,
    };
  }
}

module.exports = { SeedCache, SameCommandsCache, createClient, SESSION_TTL, API_TTL };
