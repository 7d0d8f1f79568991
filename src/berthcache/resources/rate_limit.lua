-- Fixed-window rate limit counter in one atomic round trip.
-- KEYS[1]  the counter key ({prefix}ratelimit:{ip}:{endpoint})
-- ARGV[1]  window length in milliseconds
-- Returns {count in this window, milliseconds until the window resets}.
-- The expiry is set in the same call as the first INCR, so a crash can never leave a counter
-- without a TTL; a counter that somehow has none (PTTL -1) is repaired here too.
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
