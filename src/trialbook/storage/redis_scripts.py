"""The server-side scripts of :class:`~trialbook.storage.redis.RedisStore`, and the commands a
write sends through them.

A Redis ``MULTI``/``EXEC`` cannot make its commands depend on what the server holds, so every
write of an experiment runs as one Lua script (atomic on the server) that first checks that the
experiment exists (its hash ``P exp:E`` has a ``name``; deleting an experiment removes that hash
first) and that the runs it replaces are still at the versions they were read at, and only then
runs the write's commands: a late write to a deleted experiment writes nothing and is refused,
instead of re-creating keys of it, and a write of a run another writer changed meanwhile
writes nothing either. Metric chunks are upserted by position inside the script, which
corrects the point counts by what a chunk it replaces held. The commands travel as script
arguments built by :class:`Commands`; no ``WATCH`` and no read before the write.

Examples
--------
>>> commands = Commands()
>>> commands.add("HSET", "k", "f", 1)
>>> commands.add("DEL", "k")
>>> commands.words()
[4, 'HSET', 'k', 'f', 1, 2, 'DEL', 'k']
"""

from __future__ import annotations

from collections.abc import Iterable

from trialbook.storage.base import batches

__all__ = ["ALLOCATE", "COLLECT", "CREATE", "MARK_DELETED", "WRITE", "Commands"]

_MAX_WORDS = 1000
"""Words of one command at most (Lua's ``unpack`` has a small limit): longer ``SADD`` and
``HSET`` commands are split by :meth:`Commands.add_many`."""


class Commands:
    """The commands of one write, for :data:`WRITE` or :data:`CREATE`: each is its number of
    words, then the words (the command's name and arguments)."""

    def __init__(self) -> None:
        self._words: list[object] = []

    def add(self, name: str, key: str, *args: object) -> None:
        """Append one command on ``key``."""
        self._words += [2 + len(args), name, key, *args]

    def add_many(self, name: str, key: str, items: Iterable[object], per_item: int = 1) -> None:
        """Append ``name key item...`` in commands short enough for the script (``items`` are
        flat: ``per_item`` words make one item, such as a field and its value)."""
        flat = list(items)
        for part in batches(flat, _MAX_WORDS * per_item):
            self.add(name, key, *part)

    def words(self) -> list[object]:
        """All commands as one flat list of script arguments."""
        return self._words

    def __bool__(self) -> bool:
        return bool(self._words)


# Shared by the write scripts: run(words, i, written) runs the commands of words[i..] (see
# Commands) and lists the keys it wrote in ``written``. Besides Redis commands it knows three
# pseudo-commands:
# - UNHASH <step hashes> <set of run R> <NUL R> removes the step hashes of run R that still
#   point at it (a later run may have replaced some), then the set;
# - CHUNK <chunks> <experiment's counts> <run's counts> <start> <chunk> <count> <name> puts a
#   metric chunk in the sorted set of a metric of a run, scored by its start (the position of
#   its first point), replacing the chunk of that start (a retried write), and corrects the
#   point counts by the difference (a chunk is start int64, count uint32, then its arrays);
# - CLEAR <chunks before positions> <chunks> <experiment's counts> <run's counts> <name>
#   deletes the points of a metric of a run (a run executed again) and takes them off the
#   counts.
_RUN = """
local function unhash(written, hashes, fields, suffix)
  for _, field in ipairs(redis.call('SMEMBERS', fields)) do
    local value = redis.call('HGET', hashes, field)
    if value and string.sub(value, -#suffix) == suffix then
      redis.call('HDEL', hashes, field)
    end
  end
  redis.call('DEL', fields)
end
local function chunk(written, chunks, counts, run_counts, start, member, count, name)
  local delta = tonumber(count)
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', chunks, start, start)) do
    delta = delta - struct.unpack('<I4', old, 9)
  end
  redis.call('ZREMRANGEBYSCORE', chunks, start, start)
  redis.call('ZADD', chunks, start, member)
  if delta ~= 0 then
    redis.call('HINCRBY', counts, name, delta)
    redis.call('HINCRBY', run_counts, name, delta)
  end
  written[#written + 1] = chunks
  written[#written + 1] = counts
  written[#written + 1] = run_counts
end
local function clear(written, old_chunks, chunks, counts, run_counts, name)
  local count = tonumber(redis.call('HGET', run_counts, name) or '0')
  if count ~= 0 then redis.call('HINCRBY', counts, name, -count) end
  redis.call('HDEL', run_counts, name)
  redis.call('DEL', old_chunks, chunks)
end
local pseudo = {UNHASH = unhash, CHUNK = chunk, CLEAR = clear}
local function run(words, i, written)
  while i <= #words do
    local n = tonumber(words[i])
    local own = pseudo[words[i + 1]]
    if own then
      own(written, unpack(words, i + 2, i + n))
    else
      redis.call(unpack(words, i + 1, i + n))
      written[#written + 1] = words[i + 2]
    end
    i = i + n + 1
  end
end
"""

WRITE = (
    _RUN
    + """
-- KEYS[1] an experiment's hash. ARGV[1] m, the number of runs whose stored versions the write
-- compares, ARGV[2 .. 1 + 3m] for each: its hash, the version it was read at, the write's
-- token ('' for none); then the commands of the write. Runs them only if the experiment exists
-- (else returns 0, nothing written) and each of those runs exists at the version it was read
-- at, or at the next one written by the same token (a retry of this write); else returns,
-- writing nothing, the experiment's name then for each run: 1 if it exists (else 0), its
-- stored version (0: none) and token. Returns 1 when it wrote.
if redis.call('HEXISTS', KEYS[1], 'name') == 0 then return 0 end
local m = tonumber(ARGV[1])
local stored = {redis.call('HGET', KEYS[1], 'name')}
local moved = false
for j = 0, m - 1 do
  local read_at, token = tonumber(ARGV[3 + 3 * j]), ARGV[4 + 3 * j]
  local v = redis.call('HMGET', ARGV[2 + 3 * j], 'kind', 'version', 'writer')
  local version, writer = tonumber(v[2] or '0'), v[3] or ''
  local retry = version == read_at + 1 and token ~= '' and writer == token
  if not v[1] or (version ~= read_at and not retry) then moved = true end
  stored[#stored + 1] = v[1] and 1 or 0
  stored[#stored + 1] = version
  stored[#stored + 1] = writer
end
if moved then return stored end
run(ARGV, 2 + 3 * m, {})
return 1
"""
)

CREATE = (
    _RUN
    + """
-- KEYS[1] the name index, KEYS[2] the new experiment's hash, KEYS[3] the set of experiments
-- being deleted. ARGV[1] the name, ARGV[2] the new id, ARGV[3] '1' to replace, ARGV[4] the
-- only id that may be replaced or '', ARGV[5] the store's key prefix, ARGV[6] the number n of
-- words of the new hash (field, value, ...), ARGV[7 .. 6 + n] those, then the commands of the
-- experiment's first write.
-- Returns -1 (nothing written) if the name is taken and may not be replaced, else the id of
-- the experiment replaced (its hash removed, its id added to KEYS[3] for a sweep) or 0. If a
-- command fails, the keys of the new experiment are removed and the error is raised: the
-- experiment to replace is untouched.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and (ARGV[3] ~= '1' or (ARGV[4] ~= '' and old ~= ARGV[4])) then return -1 end
local n = tonumber(ARGV[6])
redis.call('HSET', KEYS[2], unpack(ARGV, 7, 6 + n))
local written = {}
local ok, err = pcall(run, ARGV, 7 + n, written)
if not ok then
  local own = KEYS[2] .. ':'
  for _, key in ipairs(written) do
    if string.sub(key, 1, #own) == own then redis.call('DEL', key) end
  end
  redis.call('DEL', KEYS[2])
  if type(err) == 'table' then err = err.err or err.msg end
  return redis.error_reply(tostring(err))
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if old then
  redis.call('SADD', KEYS[3], old)
  redis.call('DEL', ARGV[5] .. 'exp:' .. old)
  return tonumber(old)
end
return 0
"""
)

MARK_DELETED = """
-- KEYS[1] the name index, KEYS[2] the set of experiments being deleted; ARGV[1] the name,
-- ARGV[2] the store's key prefix. Unnames the experiment and removes its hash (so every later
-- write of it is refused and adds no key), and adds its id to KEYS[2] until its keys are swept.
-- Returns its id, or 0 if there is none of that name.
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], id)
redis.call('DEL', ARGV[2] .. 'exp:' .. id)
return tonumber(id)
"""

ALLOCATE = """
if redis.call('HEXISTS', KEYS[1], 'name') == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'next_run_id', ARGV[1])
"""

# KEYS[1] the blob index, KEYS[2..] blob keys; ARGV[1] the cutoff, ARGV[2..] their digests;
# ARGV[#] 1 for a dry run. Removes each blob still last used before the cutoff (atomically: a
# write that reuses it refreshes its score in its own script). Returns [count, bytes].
COLLECT = """
local count, size = 0, 0
local dry = ARGV[#ARGV] == '1'
for i = 2, #KEYS do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    count = count + 1
    size = size + redis.call('STRLEN', KEYS[i])
    if not dry then
      redis.call('DEL', KEYS[i])
      redis.call('ZREM', KEYS[1], ARGV[i])
    end
  end
end
return {count, size}
"""
