import type { ClaimResult, IdempotencyStore } from './store.js'

/**
 * The part of an ioredis client (or a compatible one) the store uses. The host creates, owns and
 * closes the client; give it `enableOfflineQueue: false` and a `commandTimeout`, so that a Redis
 * that is down makes requests fail fast (503) rather than wait.
 */
export interface RedisClientLike {
  set(key: string, value: string, px: 'PX', ttl: number, nx: 'NX'): Promise<'OK' | null>
  set(key: string, value: string, px: 'PX', ttl: number): Promise<'OK' | null>
  get(key: string): Promise<string | null>
  eval(script: string, keys: number, ...args: Array<string | number>): Promise<unknown>
}

export interface RedisStoreOptions {
  /** Prefix of every key the store writes. Default `'provider-callbacks:'`. */
  prefix?: string
}

const DONE = 'done'
// Only the owner's own claim is extended or dropped: after an expiry another replica may hold it.
const REFRESH = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

/** A store shared by every replica, in Redis: a claim is `SET NX PX`, so it expires if its process dies. */
export function redisStore (client: RedisClientLike, options: RedisStoreOptions = {}): IdempotencyStore {
  const prefix = options.prefix ?? 'provider-callbacks:'
  const claimValue = (owner: string): string => `claim:${owner}`
  return {
    async claim (key, owner, ttl): Promise<ClaimResult> {
      if (await client.set(prefix + key, claimValue(owner), 'PX', ttl, 'NX') === 'OK') return 'claimed'
      // Taken: by a finished delivery, or a running one (or one that expired just now, which a
      // retry will find free).
      return await client.get(prefix + key) === DONE ? 'done' : 'in-flight'
    },
    async refresh (key, owner, ttl) {
      // PEXPIRE's 1, or the script's 0 when the claim is gone or another owner's.
      return await client.eval(REFRESH, 1, prefix + key, claimValue(owner), ttl) === 1
    },
    async complete (key, _owner, ttl) {
      await client.set(prefix + key, DONE, 'PX', ttl)
    },
    async release (key, owner) {
      await client.eval(RELEASE, 1, prefix + key, claimValue(owner))
    }
  }
}
