-- Delete one chunk of an endpoint's cached responses, found through its index, atomically.
-- KEYS[1]  the endpoint's index ({prefix}api-index:{endpoint}): a sorted set of user ids
-- ARGV[1]  the head of the entries' keys ({prefix}api:{endpoint}:); the user id follows
-- ARGV[2]  how many index members to take in this call
-- Returns {entries that existed and were deleted, members left in the index}.
-- The entry keys are built here from the index: it is the only list of them (the app user may
-- not SCAN). One chunk is atomic, so an entry written concurrently is either deleted together
-- with its index member or stays indexed: never orphaned, never a retry loop under writes.
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local deleted = 0
for _, member in ipairs(members) do
  deleted = deleted + redis.call('DEL', ARGV[1] .. member)
end
if #members > 0 then
  redis.call('ZREM', KEYS[1], unpack(members))
end
return {deleted, redis.call('ZCARD', KEYS[1])}
