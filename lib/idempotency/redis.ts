import type { ClaimResult, IdempotencyStore, KeyOwner } from './store.js'

/**
 * The part of an ioredis client (or a compatible one) the store uses. The host creates, owns and
 * closes the client; give it `enableOfflineQueue: false` and a `commandTimeout`, so that a Redis
 * that is down makes requests fail fast (503) rather than wait.
 */
export interface RedisClientLike {
  eval(script: string, keys: number, ...args: Array<string | number>): Promise<unknown>
  /**
   * `false` for one Redis (ioredis's `Redis`): the store then sends each tick's commands as one
   * script over all their keys. Anything else (ioredis's `Cluster` says `true`; a client that does
   * not say) gets a script per key, since a script's keys must share a cluster hash slot.
   */
  readonly isCluster?: boolean
}

export interface RedisStoreOptions {
  /** Prefix of every key the store writes. Default `'provider-callbacks:'`. */
  prefix?: string
}

/** The redis store: the per-key methods, and the batch ones, each batch in one round trip. */
export interface RedisStore extends IdempotencyStore {
  refresh(key: string, owner: string, ttl: number): Promise<boolean>
  complete(key: string, owner: string, ttl: number): Promise<boolean>
  claimMany(claims: readonly KeyOwner[], ttl: number): Promise<ClaimResult[]>
  refreshMany(claims: readonly KeyOwner[], ttl: number): Promise<boolean[]>
}

const DONE = 'done'
// One script per operation, over every key the tick has for it: ARGV[1] is the ttl, ARGV[1 + i]
// the value for KEYS[i]. A claim is SET NX PX, and when the key is taken, what holds it (done, or
// another delivery's claim) comes back in the same round trip; only the keys taken are answered
// (their index, then their value), so a batch that is all new costs no reply to encode and parse. Only the owner's own claim is
// extended or dropped: after an expiry another replica may hold it. Answers are never nil (a nil
// would end the array).
export const CLAIM = `local out, n = {}, 0
for i, key in ipairs(KEYS) do
  if not redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1], 'NX') then
    out[n + 1] = i
    out[n + 2] = redis.call('GET', key) or 0
    n = n + 2
  end
end
return out`
const REFRESH = `local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then out[i] = redis.call('PEXPIRE', key, ARGV[1]) else out[i] = 0 end
end
return out`
// Done only over the owner's own claim, checked in the same script: once it expired another
// replica may have claimed and run the event, and a late success must not be recorded over that.
// As CLAIM, only the keys that were not the owner's are answered (their index, then 0).
export const COMPLETE = `local out, n = {}, 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('SET', key, '${DONE}', 'PX', ARGV[1])
  else
    out[n + 1] = i
    out[n + 2] = 0
    n = n + 2
  end
end
return out`
const RELEASE = `for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then redis.call('DEL', key) end
end
return {}`

/** What one tick asks of one script (and one ttl): every caller's keys, one after the other. */
interface Group {
  script: string
  ttl: number
  keys: string[]
  values: string[]
  callers: Array<{ from: number, count: number, resolve: (answers: unknown[]) => void, reject: (error: unknown) => void }>
}

/**
 * A store shared by every replica, in Redis: a claim is `SET NX PX`, so it expires if its process
 * dies. What the plugin asks within one tick of the event loop (a batch's claims, the records of
 * the items whose handlers settled together, a refresh of every held claim) goes out together at
 * the end of that tick: a script per operation over all its keys on one Redis; on a Cluster a
 * script per key (a script's keys must share a hash slot, and event ids are spread over all of
 * them), all sent at once, each to its node. Either way one round trip, whatever the number of keys.
 */
export function redisStore (client: RedisClientLike, options: RedisStoreOptions = {}): RedisStore {
  const prefix = options.prefix ?? 'provider-callbacks:'
  const claimValue = (owner: string): string => `claim:${owner}`
  const oneScript = client.isCluster === false
  let groups = new Map<string, Group>()

  const evaluate = async (script: string, ttl: number, keys: string[], values: string[]): Promise<unknown[]> =>
    await (client.eval(script, keys.length, ...keys, ttl, ...values) as Promise<unknown[]>)
  const flush = (): void => {
    const due = groups
    groups = new Map()
    for (const { script, ttl, keys, values, callers } of due.values()) {
      if (oneScript) {
        evaluate(script, ttl, keys, values).then(
          answers => {
            if (script === CLAIM || script === COMPLETE) answers = expand(answers, keys.length)
            for (const { from, count, resolve } of callers) resolve(count === answers.length ? answers : answers.slice(from, from + count))
          },
          (error: unknown) => { for (const { reject } of callers) reject(error) }
        )
        continue
      }
      for (const { from, count, resolve, reject } of callers) {
        const each = []
        for (let i = from; i < from + count; i++) {
          each.push(evaluate(script, ttl, [keys[i]!], [values[i]!]).then(answers => script === CLAIM || script === COMPLETE ? expand(answers, 1)[0] : answers[0]))
        }
        Promise.all(each).then(resolve, reject)
      }
    }
  }
  const enqueue = (script: string, ttl: number, keys: readonly string[], values: readonly string[]): Promise<unknown[]> =>
    new Promise((resolve, reject) => {
      if (groups.size === 0) queueMicrotask(flush)
      const id = `${ttl}:${script === CLAIM ? 'c' : script === REFRESH ? 'r' : script === COMPLETE ? 'd' : 'x'}`
      let group = groups.get(id)
      if (group === undefined) groups.set(id, group = { script, ttl, keys: [], values: [], callers: [] })
      group.callers.push({ from: group.keys.length, count: keys.length, resolve, reject })
      for (const key of keys) group.keys.push(prefix + key)
      for (const value of values) group.values.push(value)
    })

  // Taken: by a finished delivery, or a running one (or one that expired just now, which a retry
  // will find free).
  const claimed = (answer: unknown): ClaimResult => answer === 1 ? 'claimed' : answer === DONE ? 'done' : 'in-flight'
  // PEXPIRE's 1, or 0 when the claim is gone or another owner's.
  const extended = (answer: unknown): boolean => answer === 1
  const keysOf = (claims: readonly KeyOwner[]): string[] => claims.map(claim => claim.key)
  const valuesOf = (claims: readonly KeyOwner[]): string[] => claims.map(claim => claimValue(claim.owner))
  return {
    claim: async (key, owner, ttl) => claimed((await enqueue(CLAIM, ttl, [key], [claimValue(owner)]))[0]),
    claimMany: async (claims, ttl) => (await enqueue(CLAIM, ttl, keysOf(claims), valuesOf(claims))).map(claimed),
    refresh: async (key, owner, ttl) => extended((await enqueue(REFRESH, ttl, [key], [claimValue(owner)]))[0]),
    refreshMany: async (claims, ttl) => (await enqueue(REFRESH, ttl, keysOf(claims), valuesOf(claims))).map(extended),
    complete: async (key, owner, ttl) => (await enqueue(COMPLETE, ttl, [key], [claimValue(owner)]))[0] === 1,
    release: async (key, owner) => { await enqueue(RELEASE, 0, [key], [claimValue(owner)]) }
  }
}

// CLAIM's or COMPLETE's answer, one per key: 1 where the key was free (or the owner's, and is now
// done), else what held it (0 for COMPLETE).
function expand (taken: unknown[], count: number): unknown[] {
  const answers = new Array<unknown>(count).fill(1)
  for (let i = 0; i < taken.length; i += 2) answers[(taken[i] as number) - 1] = taken[i + 1]
  return answers
}
