"""Lua run atomically inside Redis, so a push is all-or-nothing and a retried push changes nothing.

Versions are hybrid-logical-clock integers of ~18 digits, past the 53 bits a Lua number holds exactly, so
they travel and are compared as decimal strings (longer is larger; equal lengths compare as text). A write is
ordered by its stamp, (version, node that minted it), compared lexicographically as `store/versions.py` does:
two nodes that mint the same version still have one winner, the same in Redis and on every node. A hash
written before stamps has no `node` field and counts as node ''.

The record kinds the scripts write into the change feed and the codes they return come from the enums in
`store/kinds.py`, substituted into the Lua text below (`$NAME`), so Python and Lua cannot drift apart.
"""

from __future__ import annotations

from string import Template

from hivemind_app.store.kinds import LearningPush, MemoryPush, RecordKind, SessionPush

_NAMES: dict[str, object] = {
    "KIND_MEMORY": RecordKind.MEMORY.value,
    "KIND_SESSION": RecordKind.SESSION.value,
    "MEMORY_OLDER": int(MemoryPush.OLDER),
    "MEMORY_WRITTEN": int(MemoryPush.WRITTEN),
    "SESSION_WRITTEN": int(SessionPush.WRITTEN),
    "SESSION_WON": int(SessionPush.WON_CONFLICT),
    "SESSION_LOST": int(SessionPush.LOST_CONFLICT),
    "SESSION_COPY_CHANGED": int(SessionPush.COPY_CHANGED),
    "LEARNING_DUPLICATE": int(LearningPush.DUPLICATE),
    "LEARNING_QUEUED": int(LearningPush.QUEUED),
}


def _lua(source: str) -> str:
    return Template(source).substitute(_NAMES)


_NEWER = """local function newer(a, b) return #a > #b or (#a == #b and a > b) end
local function later(v, n, cv, cn) if v == cv then return n > cn end return newer(v, cv) end
"""

# KEYS: embedding hash, memory:embeddings zset, change feed.
# ARGV: id, version, zset member ('' for a tombstone), zset score, node that minted the version, node that
# pushes it, pairs...
# Returns a MemoryPush. A later stamp is written. An equal stamp is the same write: it is written again only
# where the hub's copy differs from it (damaged in place in Redis, lacking the vector a backfill attached
# since, or labels a node joined into it since: `store/memory_rows.py`; a push without a vector never counts
# as different for that; a field the hub lacks counts as ''), with a feed entry so that the nodes that refused
# the damaged copy, or lack the labels, read it again: the entry names the node that pushed it, so every
# other node reads it, the one that minted the stamp included; a retried push of an unchanged record writes
# nothing.
PUSH_MEMORY = _lua(
    _NEWER
    + """
local cur = redis.call('HGET', KEYS[1], 'version')
local function differs()
  for i = 7, #ARGV, 2 do
    local name, value = ARGV[i], ARGV[i + 1]
    local theirs = redis.call('HGET', KEYS[1], name)
    if name == 'vector' then
      if value ~= '' and (theirs or '') == '' then return true end
    elseif name ~= 'model' and name ~= 'dim' and (theirs or '') ~= value then
      return true
    end
  end
  return false
end
local member = ARGV[3]
local kept = nil  -- the hub's vector, model and dim, kept by a same-stamp repair that carries no vector
if cur then
  local cur_node = redis.call('HGET', KEYS[1], 'node') or ''
  if cur == ARGV[2] and cur_node == ARGV[5] then
    if not differs() then return $MEMORY_OLDER end
    local theirs = redis.call('HMGET', KEYS[1], 'vector', 'model', 'dim', 'zmember')
    for i = 7, #ARGV, 2 do
      if ARGV[i] == 'vector' and ARGV[i + 1] == '' and (theirs[1] or '') ~= '' and member ~= '' then
        kept, member = theirs, theirs[4] or member
      end
    end
  elseif not later(ARGV[2], ARGV[5], cur, cur_node) then
    return $MEMORY_OLDER
  end
end
local old = redis.call('HGET', KEYS[1], 'zmember')
if old and old ~= member then redis.call('ZREM', KEYS[2], old) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'node', ARGV[5], 'zmember', member, unpack(ARGV, 7))
if kept then redis.call('HSET', KEYS[1], 'vector', kept[1], 'model', kept[2] or '', 'dim', kept[3] or '') end
if member ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], member) end
redis.call('XADD', KEYS[3], '*', 'kind', '$KIND_MEMORY', 'id', ARGV[1], 'version', ARGV[2], 'node', ARGV[6])
return $MEMORY_WRITTEN
"""
)

# KEYS: session hash, conflicts hash, change feed, hive epoch.
# ARGV: id, version, base version ('' if never synced), state as stored (JSON, or its ciphertext), ttl, node that
# minted the version, cleared ('1'/'0'), node that minted the base version, the hive epoch the pusher last
# reconciled with (the one its base was synced in; '' if none), then what a node with the hive key sends ('' each
# without it): sealed ('1'), the hive epoch it read just before (the one it sealed, written as 'epoch'), what it
# found in the hub's copy ('ok:DIGEST' it verified, 'bad:DIGEST' it did not, 'none'; DIGEST is the sha1 of
# every field of the copy these rules read, length-prefixed, `hub/push.py` copy_digest), the edit's MAC, its `enc`,
# the conflict record's MAC if ours wins over the copy checked, and if the copy wins over ours
# (`RecordSeal.conflict_mac`); then the seed's fields (timestamp, context, files, current_task).
# Returns {SessionPush.WRITTEN}, {WON_CONFLICT} (written, the other side's edit kept as the conflict's loser)
# or {LOST_CONFLICT, version, node} (Redis's later edit wins and ours is kept as the loser; the stamp of the
# edit it decided for, so the node never takes an older copy put in its place meanwhile), or {COPY_CHANGED}
# (below). Edits are ordered by stamp: two nodes that mint the same version are ordered by node id, whichever
# pushed first. The hash keeps the base of the edit it holds as a stamp too ('base', 'base_node'), and the
# hive epoch it was written in ('epoch'). Every comparison is of whole stamps, never of versions alone:
# - the hub holds our base: ours follows it, and is written;
# - the hub holds an edit older than our base: a remnant of the history our base came from (the hub was
#   restored from an older copy, or a node's reconcile published again an edit it had synced: an edit that
#   is its own base) is written over; an edit written into the hub in another epoch than the one our base was
#   synced in, and not its own base, is a new edit made into a flushed hub by a node that never saw our base
#   (its clock behind ours): the two meet as a conflict;
# - an edit whose stamp is the base of the hub's later edit was taken by the hub already (a retry), and so was
#   an edit that is its own base (a retry, or a reconcile publishing again what the node had synced) where
#   the hub's later edit superseded it: written in the same epoch as our edit was synced in, or based on an
#   edit not older than ours (an edit written into a flushed hub on an older base never saw ours: a
#   conflict). Nothing is written, and the answer is {WRITTEN, version, node}, the hub's later edit, for the node
#   to take; an edit at the version of that base minted by another node is a different edit.
# A hash without 'base_node' (written before it was kept) has base node '', as a hash without 'node' has node
# ''; a hash without 'epoch' counts as written in the pusher's.
# On a hive with a key, the fields those rules read ('base', 'base_node', 'epoch') are covered by the hash's MAC
# (trust/records.py), which Lua cannot check: the pusher checked the hub's copy just before, and sends a digest
# of every field of it these rules read, which the script recomputes over the copy it holds (a copy whose
# base changed after the check and kept its MAC is a different copy, never taken for the one checked). A copy
# that did not verify is no edit of this hive (every node refuses it): ours is written over it. A copy other
# than the one the pusher checked (written or changed meanwhile) decides nothing: the script writes nothing and
# answers {COPY_CHANGED}; the edit stays queued and the next pass checks the copy again (a copy changed and put
# back around the script can then neither make it drop our edit nor leave a conflict record no node can read):
# nothing Redis holds unchecked can make an edit be taken over another, or dropped, without a conflict record.
# Each side of a conflict record carries what its MAC covers (`_base`, `_base_node`, `_epoch`, `_cleared`,
# `_enc`) and the MAC (`_mac`), so a reader checks each side as it checks a session's hash.
PUSH_SESSION = _lua(
    _NEWER
    + """
local cur = redis.call('HGET', KEYS[1], 'version')
local v, node, base, base_node, base_epoch = ARGV[2], ARGV[6], ARGV[3], ARGV[8], ARGV[9]
local sealed = ARGV[10] == '1'
local epoch = redis.call('GET', KEYS[4]) or ''
if sealed then epoch = ARGV[11] end
local SIDE = {'version', 'node', 'cleared', 'base', 'base_node', 'epoch', 'mac', 'enc'}
local function write()
  redis.call('DEL', KEYS[1])
  local fields = {'version', v, 'node', node, 'base', base, 'base_node', base_node, 'epoch', epoch}
  if ARGV[7] == '1' then
    table.insert(fields, 'cleared'); table.insert(fields, '1')
  else
    table.insert(fields, 'state'); table.insert(fields, ARGV[4])
  end
  if ARGV[13] ~= '' then table.insert(fields, 'mac'); table.insert(fields, ARGV[13]) end
  if ARGV[14] ~= '' then table.insert(fields, 'enc'); table.insert(fields, ARGV[14]) end
  for i = 17, #ARGV do table.insert(fields, ARGV[i]) end
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('XADD', KEYS[3], '*', 'kind', '$KIND_SESSION', 'id', ARGV[1], 'version', v, 'node', node)
end
if not cur then
  write()
  return {$SESSION_WRITTEN}
end
local hub = redis.call('HMGET', KEYS[1], 'node', 'base', 'base_node', 'epoch', 'state', 'cleared', 'mac', 'enc')
local their_node, hub_base, hub_base_node, their_epoch = hub[1] or '', hub[2] or '', hub[3] or '', hub[4] or ''
if sealed then
  -- the copy as the pusher checked it: every field these rules read, length-prefixed (hub/push.py copy_digest)
  local parts = {#cur .. ':' .. cur}
  for i = 1, 8 do
    local field = hub[i] or ''
    table.insert(parts, #field .. ':' .. field)
  end
  local digest = redis.sha1hex(table.concat(parts))
  if ARGV[12] == 'bad:' .. digest then
    write()
    return {$SESSION_WRITTEN}
  end
  if ARGV[12] ~= 'ok:' .. digest then return {$SESSION_COPY_CHANGED} end
end
if cur == v and their_node == node then return {$SESSION_WRITTEN} end
if base ~= '' then
  -- nobody wrote after the edit ours was based on
  if cur == base and their_node == base_node then
    write()
    return {$SESSION_WRITTEN}
  end
  -- the hub holds an older edit: a remnant of our base's history, unless a new edit made into a flushed hub
  local remnant = (hub_base == cur and hub_base_node == their_node) or their_epoch == '' or their_epoch == base_epoch
  if remnant and later(base, base_node, cur, their_node) then
    write()
    return {$SESSION_WRITTEN}
  end
end
-- our edit is its own base, or the base of the hub's later edit: the hub took it already and has moved on (a
-- push retried after the pusher died between Redis's answer and the outbox delete, before or after it
-- recorded the answer); nothing is lost, so nothing is written and it is no conflict
local own_base = base == v and base_node == node
local moved_on = their_epoch == '' or their_epoch == base_epoch or not later(v, node, hub_base, hub_base_node)
if later(cur, their_node, v, node)
    and ((hub_base == v and hub_base_node == node) or (own_base and moved_on)) then
  return {$SESSION_WRITTEN, cur, their_node}
end
local ours = {version = v, node = node, state = ARGV[4], cleared = ARGV[7] == '1' and '1' or '', base = base,
  base_node = base_node, epoch = epoch, mac = ARGV[13], enc = ARGV[14]}
local theirs = {version = cur, node = their_node, state = hub[5] or '', cleared = hub[6] or '', base = hub_base,
  base_node = hub_base_node, epoch = their_epoch, mac = hub[7] or '', enc = hub[8] or ''}
local function conflict(winner, loser, mac)
  local record = {winner = winner.state, loser = loser.state}
  if mac ~= '' then record['mac'] = mac end
  for _, name in ipairs(SIDE) do
    record['winner_' .. name] = winner[name]
    record['loser_' .. name] = loser[name]
  end
  redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(record))
end
if later(v, node, cur, their_node) then
  write()
  conflict(ours, theirs, ARGV[15])
  return {$SESSION_WON}
end
conflict(theirs, ours, ARGV[16])
return {$SESSION_LOST, cur, their_node}
"""
)

# KEYS: pushed marker, learning:queue stream. ARGV: maxlen, field/value pairs...
# Returns a LearningPush.
PUSH_LEARNING = _lua(
    """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', 86400) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 2))
  return $LEARNING_QUEUED
end
return $LEARNING_DUPLICATE
"""
)

# KEYS: embedding hash. ARGV: updated_at cutoff (unix seconds). Deletes the hash only if it is still a
# tombstone last written before the cutoff (a memory stored again since is kept). Returns 1 if deleted.
PRUNE_TOMBSTONE = """
if redis.call('HGET', KEYS[1], 'deleted') == '1' and tonumber(redis.call('HGET', KEYS[1], 'updated_at') or '0')
    < tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
