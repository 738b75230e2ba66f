// Type tests of the idempotency store interface and the two stores (memoryStore, redisStore over
// an ioredis client). index.test-d.ts already checks an object-literal store and a claim that
// answers 'ok'; here a store is written as users write one: a class that implements the interface.
import Fastify from 'fastify'
import { Cluster, Redis } from 'ioredis'
import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis6'
import providerCallbacks, {
  type ClaimResult, type IdempotencyStore, type KeyOwner, type MaybePromise, type RedisStore, type MemoryStoreOptions, type RedisClientLike, type RedisStoreOptions,
  type TransactionalStore, memoryStore, postgresStore, redisStore
} from '../../lib/index.js'
import { type Equal, expectType } from './assert.js'

expectType<Equal<ClaimResult, 'claimed' | 'in-flight' | 'done'>>()
// Every store method answers with a value or a promise of it.
expectType<Equal<MaybePromise<ClaimResult>, ClaimResult | Promise<ClaimResult>>>()
expectType<Equal<ReturnType<IdempotencyStore['claim']>, MaybePromise<ClaimResult>>>()

// A store for another database: a class implementing the interface, with or without refresh.
class SqlStore implements IdempotencyStore {
  async claim (key: string, owner: string, ttl: number): Promise<ClaimResult> {
    return key.length + owner.length + ttl > 0 ? 'claimed' : 'done'
  }

  async refresh (_key: string, _owner: string, _ttl: number): Promise<void> {}
  async complete (_key: string, _owner: string, _ttl: number): Promise<void> {}
  async release (_key: string, _owner: string): Promise<void> {}
}
class StoreWithoutRefresh implements IdempotencyStore {
  async claim (): Promise<ClaimResult> { return 'in-flight' }
  async complete (): Promise<void> {}
  async release (): Promise<void> {}
}
// A store in memory may answer synchronously, method by method.
class SyncStore implements IdempotencyStore {
  claim (): ClaimResult { return 'claimed' }
  refresh (): void {}
  async complete (): Promise<void> {}
  release (): void {}
}
// A fenced store's complete says whether the claim was still the owner's: false is a lost claim.
class FencedStore implements IdempotencyStore {
  claim (): ClaimResult { return 'claimed' }
  async complete (): Promise<boolean> { return false }
  release (): void {}
}
class SyncWrongClaim implements IdempotencyStore {
  // @ts-expect-error a synchronous claim still answers a ClaimResult
  claim (): string { return 'OK' }
  complete (): void {}
  release (): void {}
}
const app = Fastify()
await app.register(providerCallbacks, { edis: {}, idempotency: { store: new SyncStore() } })
await app.register(providerCallbacks, { edis: {}, idempotency: { store: new SqlStore() } })
await app.register(providerCallbacks, { edis: {}, idempotency: { store: new StoreWithoutRefresh() } })

// @ts-expect-error release is missing
class MissingRelease implements IdempotencyStore {
  async claim (): Promise<ClaimResult> { return 'claimed' }
  async complete (): Promise<void> {}
}
// @ts-expect-error claim is missing
class MissingClaim implements IdempotencyStore {
  async complete (): Promise<void> {}
  async release (): Promise<void> {}
}
class WrongClaimResult implements IdempotencyStore {
  // @ts-expect-error claim answers 'claimed' | 'in-flight' | 'done', not a boolean
  async claim (): Promise<boolean> { return true }
  async complete (): Promise<void> {}
  async release (): Promise<void> {}
}
class WrongClaimString implements IdempotencyStore {
  // @ts-expect-error nor any string
  async claim (): Promise<string> { return 'OK' }
  async complete (): Promise<void> {}
  async release (): Promise<void> {}
}
class WrongComplete implements IdempotencyStore {
  async claim (): Promise<ClaimResult> { return 'claimed' }
  // @ts-expect-error complete answers whether it recorded (a boolean) or nothing, not a number
  async complete (): Promise<number> { return 1 }
  async release (): Promise<void> {}
}
class WrongKey implements IdempotencyStore {
  // @ts-expect-error keys are strings
  async claim (_key: number): Promise<ClaimResult> { return 'claimed' }
  async complete (): Promise<void> {}
  async release (): Promise<void> {}
}
class ExtraParameter implements IdempotencyStore {
  async claim (): Promise<ClaimResult> { return 'claimed' }
  async complete (): Promise<void> {}
  // @ts-expect-error the plugin calls release(key, owner) and nothing more
  async release (_key: string, _owner: string, _reason: string): Promise<void> {}
}
// The batch methods are optional; a store may answer them synchronously.
class Batched implements IdempotencyStore {
  async claim (): Promise<ClaimResult> { return 'claimed' }
  async complete (): Promise<void> {}
  async release (): Promise<void> {}
  claimMany (claims: readonly KeyOwner[]): ClaimResult[] { return claims.map(() => 'claimed') }
  async refreshMany (claims: readonly KeyOwner[], _ttl: number): Promise<boolean[]> { return claims.map(() => true) }
}
class WrongClaimMany implements IdempotencyStore {
  async claim (): Promise<ClaimResult> { return 'claimed' }
  async complete (): Promise<void> {}
  async release (): Promise<void> {}
  // @ts-expect-error claimMany answers a ClaimResult per key, in order
  async claimMany (): Promise<ClaimResult> { return 'claimed' }
}
class WrongRefresh implements IdempotencyStore {
  async claim (): Promise<ClaimResult> { return 'claimed' }
  // @ts-expect-error refresh, when there is one, takes a ttl in ms
  async refresh (_key: string, _owner: string, _ttl: string): Promise<void> {}
  async complete (): Promise<void> {}
  async release (): Promise<void> {}
}
// @ts-expect-error a store that is not one is refused by the option too
await app.register(providerCallbacks, { edis: {}, idempotency: { store: new Map() } })

// memoryStore: bounded, optional max and ttl; a store with a read-only size.
expectType<Equal<MemoryStoreOptions, { max?: number, ttl?: number }>>()
const memory = memoryStore()
const bounded = memoryStore({ max: 100_000, ttl: 60_000 })
const asStore: IdempotencyStore = bounded
expectType<Equal<typeof memory.size, number>>()
// memoryStore answers synchronously, and says so in its type; its complete whether it recorded (fenced: only over the owner's claim).
expectType<Equal<ReturnType<typeof memory.claim>, ClaimResult>>()
expectType<Equal<ReturnType<typeof memory.complete>, boolean>>()
// @ts-expect-error size is read-only
memory.size = 0
// @ts-expect-error max is a number
memoryStore({ max: '10000' })
// @ts-expect-error an unknown option
memoryStore({ maxKeys: 10 })

// redisStore: over an ioredis client (or cluster) the host creates, of major 5 or 6; any compatible
// client works.
expectType<Equal<typeof redisStore, (client: RedisClientLike, options?: RedisStoreOptions) => RedisStore>>()
// It has the batch methods, each batch one round trip.
expectType<Equal<ReturnType<RedisStore['claimMany']>, Promise<ClaimResult[]>>>()
expectType<Equal<Parameters<RedisStore['refreshMany']>, [claims: readonly KeyOwner[], ttl: number]>>()
expectType<Equal<RedisStoreOptions, { prefix?: string }>>()
declare const redis: Redis
declare const cluster: Cluster
const fromIoredis: IdempotencyStore = redisStore(redis)
redisStore(cluster, { prefix: 'app:idempotency:' })
redisStore(new Redis({ lazyConnect: true, enableOfflineQueue: false, commandTimeout: 500 }))
const asLike: RedisClientLike = redis
declare const redis6: Redis6
declare const cluster6: Cluster6
const fromIoredis6: IdempotencyStore = redisStore(redis6)
redisStore(cluster6, { prefix: 'app:idempotency:' })
redisStore(new Redis6({ lazyConnect: true, enableOfflineQueue: false, commandTimeout: 500 }))
// Its RESP3 reply mapping (maps as objects, doubles as numbers) types the client differently.
redisStore(new Redis6({ lazyConnect: true, replyMapping: 'resp3' }))
const asLike6: RedisClientLike = cluster6
// A minimal compatible client.
const compatible: RedisClientLike = { eval: async () => [1] }
redisStore(compatible)
redisStore({ ...compatible, isCluster: false })
// @ts-expect-error a client without eval cannot claim, refresh or release atomically
redisStore({ get: async () => null })
// @ts-expect-error the prefix is a string
redisStore(redis, { prefix: 1 })
// @ts-expect-error the client comes first
redisStore({ prefix: 'app:' })

export { asStore, fromIoredis, asLike, fromIoredis6, asLike6, MissingRelease, MissingClaim, WrongClaimResult, WrongClaimString, WrongComplete, FencedStore, WrongKey, ExtraParameter, WrongRefresh, SyncWrongClaim, Batched, WrongClaimMany }

// postgresStore takes node-postgres's Pool as it is; an app that declares no transaction type
// gives its handlers no `tx`.
{
  const { Pool } = await import('pg')
  const store: TransactionalStore = postgresStore(new Pool(), { table: 'claims' })
  // @ts-expect-error: table names are strings
  postgresStore(new Pool(), { table: 1 })
  // @ts-expect-error: a pool, not a connection string
  postgresStore('postgres://localhost/app')
  const app = Fastify()
  await app.register(providerCallbacks, { edis: {}, idempotency: { store, transactional: true } })
  app.providerCallbacks.on('traffic-threshold', (_event, _request, context) => {
    // @ts-expect-error: tx is typed only where the app declares ProviderCallbacksTypes { transaction }
    context.tx.query('SELECT 1')
  })
}
