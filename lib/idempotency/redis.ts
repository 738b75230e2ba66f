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
  claimMany(claims: readonly KeyOwner[], ttl: number): Promise<ClaimResult[]>
  refreshMany(claims: readonly KeyOwner[], ttl: number): Promise<boolean[]>
}

const DONE = 'done'
// Every operation of a tick in one script: for each key, an operation, a value and a ttl. A claim
// is SET NX PX, and when the key is taken, what holds it (done, or another delivery's claim) comes
// back in the same round trip. Only the owner's own claim is extended or dropped: after an expiry
// another replica may hold it. Answers are 1 or 0, or what holds a claimed key (never nil: a nil
// would end the array).
const SCRIPT = `local out = {}
for i, key in ipairs(KEYS) do
  local op, value, ttl = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  if op == 'c' then
    if redis.call('SET', key, value, 'PX', ttl, 'NX') then out[i] = 1 else out[i] = redis.call('GET', key) or 0 end
  elseif op == 'd' then
    redis.call('SET', key, '${DONE}', 'PX', ttl)
    out[i] = 1
  elseif redis.call('GET', key) == value then
    if op == 'r' then out[i] = redis.call('PEXPIRE', key, ttl) else out[i] = redis.call('DEL', key) end
  else
    out[i] = 0
  end
end
return out`

type Op = 'c' | 'r' | 'd' | 'x'
interface Pending { op: Op, key: string, value: string, ttl: number, resolve: (answer: unknown) => void, reject: (error: unknown) => void }

/**
 * A store shared by every replica, in Redis: a claim is `SET NX PX`, so it expires if its process
 * dies. What the plugin asks within one tick of the event loop (a batch's claims, the completes of
 * the items whose handlers settled together, a refresh of every held claim) goes out together, at
 * the end of that tick: one script on one Redis, or a script per key sent at once on a Cluster.
 * Either way one round trip, whatever the number of keys.
 */
export function redisStore (client: RedisClientLike, options: RedisStoreOptions = {}): RedisStore {
  const prefix = options.prefix ?? 'provider-callbacks:'
  const claimValue = (owner: string): string => `claim:${owner}`
  const oneScript = client.isCluster === false
  let queue: Pending[] = []

  const flush = (): void => {
    const ops = queue
    queue = []
    if (oneScript) send(ops)
    else for (const op of ops) send([op])
  }
  const send = (ops: Pending[]): void => {
    const args: Array<string | number> = ops.map(op => op.key)
    for (const { op, value, ttl } of ops) args.push(op, value, ttl)
    let answer
    try {
      answer = client.eval(SCRIPT, ops.length, ...args)
    } catch (error) {
      answer = Promise.reject(error)
    }
    answer.then(
      answers => { for (let i = 0; i < ops.length; i++) ops[i]!.resolve((answers as unknown[])[i]) },
      (error: unknown) => { for (const op of ops) op.reject(error) }
    )
  }
  const enqueue = async (op: Op, key: string, value: string, ttl: number): Promise<unknown> =>
    await new Promise((resolve, reject) => {
      if (queue.length === 0) queueMicrotask(flush)
      queue.push({ op, key: prefix + key, value, ttl, resolve, reject })
    })

  const claim = async (key: string, owner: string, ttl: number): Promise<ClaimResult> => {
    const answer = await enqueue('c', key, claimValue(owner), ttl)
    // Taken: by a finished delivery, or a running one (or one that expired just now, which a
    // retry will find free).
    return answer === 1 ? 'claimed' : answer === DONE ? 'done' : 'in-flight'
  }
  // PEXPIRE's 1, or 0 when the claim is gone or another owner's.
  const refresh = async (key: string, owner: string, ttl: number): Promise<boolean> => await enqueue('r', key, claimValue(owner), ttl) === 1
  return {
    claim,
    refresh,
    claimMany: async (claims, ttl) => await Promise.all(claims.map(({ key, owner }) => claim(key, owner, ttl))),
    refreshMany: async (claims, ttl) => await Promise.all(claims.map(({ key, owner }) => refresh(key, owner, ttl))),
    async complete (key, _owner, ttl) {
      await enqueue('d', key, '', ttl)
    },
    async release (key, owner) {
      await enqueue('x', key, claimValue(owner), 0)
    }
  }
}
