import { InvalidOptionError } from '../errors.js'
import type { ClaimResult, IdempotencyStore } from './store.js'

export interface MemoryStoreOptions {
  /** Most keys kept; past it the oldest are forgotten first. Default 10,000. */
  max?: number
  /** Longest any key is kept, in ms, whatever the plugin asks for. Default: no cap. */
  ttl?: number
}

// A done key is only its expiry time; a claim also names its owner. Small entries keep 100,000
// keys to a few megabytes.
type Entry = number | { owner: string, expires: number }

/**
 * The default store: one process's memory, bounded in keys and expiring. Right for a single
 * replica; several replicas need a shared store such as `redisStore`.
 */
export function memoryStore (options: MemoryStoreOptions = {}): IdempotencyStore & { readonly size: number } {
  const max = options.max ?? 10_000
  const cap = options.ttl ?? Infinity
  if (!Number.isSafeInteger(max) || max < 1) throw new InvalidOptionError(`memoryStore: max must be a positive integer, got ${JSON.stringify(options.max)}`)
  if (!(cap > 0)) throw new InvalidOptionError(`memoryStore: ttl must be a positive number of ms, got ${JSON.stringify(options.ttl)}`)
  // A Map keeps insertion order, and every write re-inserts, so the first keys are the oldest.
  const entries = new Map<string, Entry>()

  const set = (key: string, entry: Entry): void => {
    entries.delete(key)
    entries.set(key, entry)
    if (entries.size > max) entries.delete(entries.keys().next().value as string)
  }
  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key)
    if (entry === undefined) return undefined
    if ((typeof entry === 'number' ? entry : entry.expires) > Date.now()) return entry
    entries.delete(key)
    return undefined
  }
  const expiry = (ttl: number): number => Date.now() + Math.min(ttl, cap)

  return {
    /** How many keys are kept now (expired ones included until they are next looked at or evicted). */
    get size () {
      return entries.size
    },
    async claim (key, owner, ttl): Promise<ClaimResult> {
      const entry = live(key)
      if (entry === undefined) {
        set(key, { owner, expires: expiry(ttl) })
        return 'claimed'
      }
      return typeof entry === 'number' ? 'done' : 'in-flight'
    },
    async refresh (key, owner, ttl) {
      const entry = live(key)
      if (typeof entry === 'object' && entry.owner === owner) entry.expires = expiry(ttl)
    },
    async complete (key, _owner, ttl) {
      set(key, expiry(ttl))
    },
    async release (key, owner) {
      const entry = live(key)
      if (typeof entry === 'object' && entry.owner === owner) entries.delete(key)
    }
  }
}
