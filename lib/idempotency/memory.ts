import { integerOption } from '../checks.js'
import { InvalidOptionError } from '../errors.js'
import { hashOf, KeyTable } from './key-table.js'
import type { ClaimResult, IdempotencyStore } from './store.js'

export interface MemoryStoreOptions {
  /**
   * How long a done event is remembered, in events: until at least `max` newer ones were claimed
   * (and at most twice as many, as old ones are dropped a generation at a time). Claims of running
   * handlers are never dropped. Default 10,000.
   */
  max?: number
  /** Longest any key is kept, in ms, whatever the plugin asks for. Default: no cap. */
  ttl?: number
}

/** The memory store: it answers synchronously, and tells how many keys it keeps. */
export interface MemoryStore extends IdempotencyStore {
  claim(key: string, owner: string, ttl: number): ClaimResult
  refresh(key: string, owner: string, ttl: number): boolean
  complete(key: string, owner: string, ttl: number): boolean
  release(key: string, owner: string): void
  /** How many keys are kept now, claims and done events (expired ones until they are next looked at or dropped). */
  readonly size: number
}

/**
 * The default store: one process's memory, bounded in keys and expiring. Right for a single
 * replica; several replicas need a shared store such as `redisStore`. Long for a reason: the
 * store's methods close over its two tables, the hot path's state, and each method is short.
 */
export function memoryStore (options: MemoryStoreOptions = {}): MemoryStore {
  const max = integerOption(options.max ?? 10_000, 'memoryStore: max')
  const cap = options.ttl ?? Infinity
  if (!(cap > 0)) throw new InvalidOptionError(`memoryStore: ttl must be a positive number of ms, got ${JSON.stringify(options.ttl)}`)
  // Keys in two generations of about `max` each: claims go to the young one, and when it is full it
  // becomes the old one and the old one is dropped whole. A done key is so dropped only once `max`
  // newer ones were claimed, and each write is O(1), with no order of keys kept beside the tables
  // (KeyTable: why not a Map). A claim belongs to a handler still
  // running: no bound may drop it, or a redelivery would run the event a second time, so the live
  // claims of a generation being dropped move to the new young one (and do not count towards its
  // `max`, so that many long handlers cannot make every write a turnover).
  let young = new KeyTable()
  let old = new KeyTable()
  let full = max

  const turnOver = (now: number): void => {
    const dropped = old
    old = young
    // As large as the last young one grew: a generation in steady state never grows.
    young = new KeyTable(old.capacity)
    for (const [key, hash, owner, expires] of dropped.entries()) {
      if (owner !== undefined && expires > now && old.find(key, hash) < 0) young.add(key, hash, owner, expires)
    }
    full = max + young.size
  }
  const expiry = (now: number, ttl: number): number => now + Math.min(ttl, cap)
  // The newer entry shadows an older one of the same key in the old generation: the young one's
  // slot if it has the key, else the old one's (table undefined: neither).
  let table: KeyTable | undefined
  const find = (key: string, hash: number): number => {
    let slot = young.find(key, hash)
    table = young
    if (slot < 0) {
      slot = old.find(key, hash)
      table = slot < 0 ? undefined : old
    }
    return slot
  }
  // The slot of the owner's own live claim, or -1 (gone, expired, done or another owner's); in `table`.
  const claimOf = (key: string, owner: string, now: number): number => {
    const slot = find(key, hashOf(key))
    return slot >= 0 && table!.owner(slot) === owner && table!.expires(slot) > now ? slot : -1
  }

  return {
    get size () {
      return young.size + old.size
    },
    // Synchronous: the plugin then runs a delivery without a turn of the event loop per call.
    claim (key, owner, ttl): ClaimResult {
      const now = Date.now()
      const hash = hashOf(key)
      const slot = find(key, hash)
      if (slot >= 0 && table!.expires(slot) > now) return table!.owner(slot) === undefined ? 'done' : 'in-flight'
      // An expired key of the young generation is claimed in its slot; one of the old, anew in the young.
      if (slot >= 0 && table === young) {
        young.set(slot, owner, expiry(now, ttl))
        return 'claimed'
      }
      young.add(key, hash, owner, expiry(now, ttl))
      if (young.size >= full) turnOver(now)
      return 'claimed'
    },
    refresh (key, owner, ttl) {
      const now = Date.now()
      const slot = claimOf(key, owner, now)
      if (slot < 0) return false
      table!.set(slot, owner, expiry(now, ttl))
      return true
    },
    complete (key, owner, ttl) {
      // Only over the owner's own live claim: once it expired another delivery may have run the
      // event, and a late success must not be recorded over that.
      const now = Date.now()
      const slot = claimOf(key, owner, now)
      if (slot < 0) return false
      table!.set(slot, undefined, expiry(now, ttl))
      return true
    },
    release (key, owner) {
      const slot = claimOf(key, owner, Date.now())
      if (slot >= 0) table!.remove(slot)
    }
  }
}
