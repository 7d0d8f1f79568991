-- Delete every session of one user and its index, atomically (cluster mode: sessions.invalidate_all).
-- KEYS[1]  the user's session index ({prefix}session-index:{user-<id>}): a set of session ids
-- ARGV[1]  the head of the user's session keys up to the end of the hash tag
--          ({prefix}session:{user-<id>}); the rest of the session id follows
-- ARGV[2]  the ids' user part (user-<id>): each member starts with it
-- Returns how many sessions existed and were deleted.
-- The session keys and the index share the user's hash slot (the tag), so the script touches one
-- slot. Atomic, as the WATCHed transaction of the replication-group path: a session created
-- concurrently is either deleted too or created after, in a new index — never orphaned.
local members = redis.call('SMEMBERS', KEYS[1])
local user = ARGV[2]
local deleted = 0
for _, member in ipairs(members) do
  if string.sub(member, 1, #user) == user then
    deleted = deleted + redis.call('DEL', ARGV[1] .. string.sub(member, #user + 1))
  end
end
redis.call('DEL', KEYS[1])
return deleted
