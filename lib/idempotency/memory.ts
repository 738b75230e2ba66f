import { InvalidOptionError } from '../errors.js'
import type { ClaimResult, IdempotencyStore } from './store.js'

export interface MemoryStoreOptions {
  /**
   * Done events remembered: at least the newest `max` (and at most twice as many, as old ones are
   * dropped a generation at a time). Claims of running handlers are never dropped. Default 10,000.
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

// A claim while `owner` is set; done once its handlers succeeded (owner undefined). One object per
// key, changed in place: a delivery costs one Map insert (the claim) and one look-up (its complete).
interface Entry { owner: string | undefined, expires: number }

/**
 * The default store: one process's memory, bounded in keys and expiring. Right for a single
 * replica; several replicas need a shared store such as `redisStore`.
 */
export function memoryStore (options: MemoryStoreOptions = {}): MemoryStore {
  const max = options.max ?? 10_000
  const cap = options.ttl ?? Infinity
  if (!Number.isSafeInteger(max) || max < 1) throw new InvalidOptionError(`memoryStore: max must be a positive integer, got ${JSON.stringify(options.max)}`)
  if (!(cap > 0)) throw new InvalidOptionError(`memoryStore: ttl must be a positive number of ms, got ${JSON.stringify(options.ttl)}`)
  // Keys in two generations of about `max` each: claims go to the young one, and when it is full it
  // becomes the old one and the old one is dropped whole. A done key is so dropped only once `max`
  // newer ones were claimed, and each write is O(1) (deleting a Map's first keys one by one is
  // not: V8 leaves holes that every later look-up walks past). A claim belongs to a handler still
  // running: no bound may drop it, or a redelivery would run the event a second time, so the live
  // claims of a generation being dropped move to the new young one (and do not count towards its
  // `max`, so that many long handlers cannot make every write a turnover).
  let young = new Map<string, Entry>()
  let old = new Map<string, Entry>()
  let full = max

  // The newer entry shadows an older one of the same key in the old generation.
  const entry = (key: string): Entry | undefined => young.get(key) ?? old.get(key)
  const turnOver = (now: number): void => {
    const dropped = old
    old = young
    young = new Map()
    for (const [key, kept] of dropped) {
      if (kept.owner !== undefined && kept.expires > now && !old.has(key)) young.set(key, kept)
    }
    full = max + young.size
  }
  const expiry = (now: number, ttl: number): number => now + Math.min(ttl, cap)
  // The owner's own live claim, or undefined (gone, expired, done or another owner's).
  const claimOf = (key: string, owner: string, now: number): Entry | undefined => {
    const found = entry(key)
    return found !== undefined && found.owner === owner && found.expires > now ? found : undefined
  }

  return {
    get size () {
      return young.size + old.size
    },
    // Synchronous: the plugin then runs a delivery without a turn of the event loop per call.
    claim (key, owner, ttl): ClaimResult {
      const now = Date.now()
      const found = entry(key)
      if (found !== undefined && found.expires > now) return found.owner === undefined ? 'done' : 'in-flight'
      young.set(key, { owner, expires: expiry(now, ttl) })
      if (young.size >= full) turnOver(now)
      return 'claimed'
    },
    refresh (key, owner, ttl) {
      const now = Date.now()
      const claim = claimOf(key, owner, now)
      if (claim === undefined) return false
      claim.expires = expiry(now, ttl)
      return true
    },
    complete (key, owner, ttl) {
      // Only over the owner's own live claim: once it expired another delivery may have run the
      // event, and a late success must not be recorded over that.
      const now = Date.now()
      const claim = claimOf(key, owner, now)
      if (claim === undefined) return false
      claim.owner = undefined
      claim.expires = expiry(now, ttl)
      return true
    },
    release (key, owner) {
      // The claim found is the young generation's whenever that has the key.
      if (claimOf(key, owner, Date.now()) !== undefined && !young.delete(key)) old.delete(key)
    }
  }
}
