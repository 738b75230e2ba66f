import { InvalidOptionError } from '../errors.js'
import type { ClaimResult, IdempotencyStore } from './store.js'

export interface MemoryStoreOptions {
  /** Most keys kept; past it the oldest are forgotten first (half of them at a time). Default 10,000. */
  max?: number
  /** Longest any key is kept, in ms, whatever the plugin asks for. Default: no cap. */
  ttl?: number
}

/** The memory store: it answers synchronously, and tells how many keys it keeps. */
export interface MemoryStore extends IdempotencyStore {
  claim(key: string, owner: string, ttl: number): ClaimResult
  refresh(key: string, owner: string, ttl: number): void
  complete(key: string, owner: string, ttl: number): void
  release(key: string, owner: string): void
  /** How many keys are kept now (expired ones included until they are next looked at or evicted). */
  readonly size: number
}

// A done key is only its expiry time; a claim also names its owner. Small entries keep 100,000
// keys to a few megabytes, and a done key costs the garbage collector little.
type Entry = number | { owner: string, expires: number }

/**
 * The default store: one process's memory, bounded in keys and expiring. Right for a single
 * replica; several replicas need a shared store such as `redisStore`.
 */
export function memoryStore (options: MemoryStoreOptions = {}): MemoryStore {
  const max = options.max ?? 10_000
  const cap = options.ttl ?? Infinity
  if (!Number.isSafeInteger(max) || max < 1) throw new InvalidOptionError(`memoryStore: max must be a positive integer, got ${JSON.stringify(options.max)}`)
  if (!(cap > 0)) throw new InvalidOptionError(`memoryStore: ttl must be a positive number of ms, got ${JSON.stringify(options.ttl)}`)
  // Two generations of at most max/2 keys each: writes go to the young one, and when it is full it
  // becomes the old one and the old one is dropped whole. That bounds the store at max keys and
  // forgets the oldest first, at O(1) per write (deleting a Map's first keys one by one is not:
  // V8 leaves holes that every later look-up of the first key walks past).
  const half = Math.ceil(max / 2)
  let young = new Map<string, Entry>()
  let old = new Map<string, Entry>()

  const set = (key: string, entry: Entry): void => {
    // The same key in the old generation is shadowed by this one until the old is dropped: one
    // Map operation per write instead of two (large Maps are this store's main cost).
    young.set(key, entry)
    if (young.size >= half) {
      old = young
      young = new Map()
    }
  }
  const remove = (key: string): void => {
    young.delete(key)
    old.delete(key)
  }
  const live = (key: string): Entry | undefined => {
    const entry = young.get(key) ?? old.get(key)
    if (entry === undefined) return undefined
    if ((typeof entry === 'number' ? entry : entry.expires) > Date.now()) return entry
    remove(key)
    return undefined
  }
  const expiry = (ttl: number): number => Date.now() + Math.min(ttl, cap)

  return {
    get size () {
      return young.size + old.size
    },
    // Synchronous: the plugin then runs a delivery without a turn of the event loop per call.
    claim (key, owner, ttl): ClaimResult {
      const entry = live(key)
      if (entry === undefined) {
        set(key, { owner, expires: expiry(ttl) })
        return 'claimed'
      }
      return typeof entry === 'number' ? 'done' : 'in-flight'
    },
    refresh (key, owner, ttl) {
      const entry = live(key)
      if (typeof entry === 'object' && entry.owner === owner) entry.expires = expiry(ttl)
    },
    complete (key, _owner, ttl) {
      set(key, expiry(ttl))
    },
    release (key, owner) {
      const entry = live(key)
      if (typeof entry === 'object' && entry.owner === owner) remove(key)
    }
  }
}
