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

interface Claim { owner: string, expires: number }

/**
 * The default store: one process's memory, bounded in keys and expiring. Right for a single
 * replica; several replicas need a shared store such as `redisStore`.
 */
export function memoryStore (options: MemoryStoreOptions = {}): MemoryStore {
  const max = options.max ?? 10_000
  const cap = options.ttl ?? Infinity
  if (!Number.isSafeInteger(max) || max < 1) throw new InvalidOptionError(`memoryStore: max must be a positive integer, got ${JSON.stringify(options.max)}`)
  if (!(cap > 0)) throw new InvalidOptionError(`memoryStore: ttl must be a positive number of ms, got ${JSON.stringify(options.ttl)}`)
  // A claim belongs to a handler still running: no bound on keys may drop it, or a redelivery
  // would run the event a second time. Claims therefore live apart from done events, and are only
  // ever dropped by their owner, or once they expired (a handler whose refreshes stopped).
  const claims = new Map<string, Claim>()
  // Done events, as their expiry times, in two generations of up to `max` each: writes go to the
  // young one, and when it is full it becomes the old one and the old one is dropped whole. A key
  // is dropped only once `max` newer ones were written, and each write is O(1) (deleting a Map's
  // first keys one by one is not: V8 leaves holes that every later look-up walks past).
  let young = new Map<string, number>()
  let old = new Map<string, number>()

  const done = (key: string): boolean => {
    const expires = young.get(key) ?? old.get(key)
    if (expires === undefined) return false
    if (expires > Date.now()) return true
    young.delete(key)
    old.delete(key)
    return false
  }
  const liveClaim = (key: string): Claim | undefined => {
    const claim = claims.get(key)
    if (claim === undefined || claim.expires > Date.now()) return claim
    claims.delete(key)
    return undefined
  }
  // Claims outnumbering the done events kept means some expired unseen: drop those, now and then.
  const sweepClaims = (): void => {
    const now = Date.now()
    for (const [key, claim] of claims) if (claim.expires <= now) claims.delete(key)
  }
  const expiry = (ttl: number): number => Date.now() + Math.min(ttl, cap)

  return {
    get size () {
      return claims.size + young.size + old.size
    },
    // Synchronous: the plugin then runs a delivery without a turn of the event loop per call.
    claim (key, owner, ttl): ClaimResult {
      if (done(key)) return 'done'
      if (liveClaim(key) !== undefined) return 'in-flight'
      claims.set(key, { owner, expires: expiry(ttl) })
      if (claims.size > max) sweepClaims()
      return 'claimed'
    },
    refresh (key, owner, ttl) {
      const claim = liveClaim(key)
      if (claim?.owner !== owner) return false
      claim.expires = expiry(ttl)
      return true
    },
    complete (key, owner, ttl) {
      // Only over the owner's own live claim: once it expired another delivery may have run the
      // event, and a late success must not be recorded over that.
      if (liveClaim(key)?.owner !== owner) return false
      claims.delete(key)
      // The same key in the old generation is shadowed by this one until the old is dropped: one
      // Map operation per write instead of two (large Maps are this store's main cost).
      young.set(key, expiry(ttl))
      if (young.size >= max) {
        old = young
        young = new Map()
      }
      return true
    },
    release (key, owner) {
      if (liveClaim(key)?.owner === owner) claims.delete(key)
    }
  }
}
