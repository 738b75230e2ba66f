// Type tests of every registration option (lib/options.ts): each field's type, the shapes users
// write, and wrong ones rejected. index.test-d.ts already checks a credentials pair without a
// password, allowedIps as a string, an unknown top-level option and a getSecret taking a string.
import Fastify, { type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import providerCallbacks, {
  type EdisCredentials, type EdisOptions, type IdempotencyOptions, type IdempotencyStore, type ProviderCallbacksOptions,
  type ScopedVoximplantSecret, type VoximplantOptions, type VoximplantSecret, type VoximplantSecretLookup,
  memoryStore, redisStore
} from '../../lib/index.js'
import { type Equal, expectType } from './assert.js'

const app = Fastify()

// Top level.
expectType<Equal<ProviderCallbacksOptions['prefix'], string | undefined>>()
expectType<Equal<ProviderCallbacksOptions['edis'], EdisOptions | false | undefined>>()
expectType<Equal<ProviderCallbacksOptions['voximplant'], VoximplantOptions | false | undefined>>()
expectType<Equal<ProviderCallbacksOptions['idempotency'], IdempotencyOptions | false | undefined>>()
await app.register(providerCallbacks, { prefix: '/hooks', edis: {} })
await app.register(providerCallbacks, { prefix: '', edis: {}, voximplant: false })
await app.register(providerCallbacks, { edis: false, voximplant: { secret: { apiKey: 'k' } } })
// @ts-expect-error prefix is a string
await app.register(providerCallbacks, { prefix: 1, edis: {} })
// @ts-expect-error a provider is on with an object, not true
const edisTrue: ProviderCallbacksOptions = { edis: true }
// @ts-expect-error nor null
const voximplantNull: ProviderCallbacksOptions = { voximplant: null }

// EDIS. Lists may be readonly (`as const`): the plugin never changes them.
const edisConst: ProviderCallbacksOptions = { edis: { allowedIps: ['10.0.0.0/8'] as const, credentials: [{ username: 'u', password: 'p' }] as const } }
expectType<Equal<EdisOptions['path'], string | undefined>>()
expectType<Equal<EdisOptions['credentials'], EdisCredentials | readonly EdisCredentials[] | undefined>>()
expectType<Equal<EdisCredentials, { username: string, password: string }>>()
expectType<Equal<EdisOptions['allowedIps'], readonly string[] | undefined>>()
expectType<Equal<EdisOptions['bodyLimit'], number | undefined>>()
const edisFull: EdisOptions = {
  path: '/edis-hook',
  credentials: [{ username: 'hook', password: 'old' }, { username: 'hook', password: 'new' }],
  allowedIps: ['149.154.154.251', '10.0.0.0/8', '2001:db8::/32'],
  bodyLimit: 4096
}
await app.register(providerCallbacks, { edis: edisFull })
await app.register(providerCallbacks, { edis: { credentials: { username: 'hook', password: 'pw' } } })
// @ts-expect-error path is a string
const edisPath: EdisOptions = { path: 5 }
// @ts-expect-error a password is a string
const edisPassword: EdisOptions = { credentials: { username: 'hook', password: 1234 } }
// @ts-expect-error credentials are { username, password }, not a 'user:pass' string
const edisColon: EdisOptions = { credentials: 'hook:pw' }
// @ts-expect-error credentials have no other fields
const edisRealm: EdisOptions = { credentials: { username: 'hook', password: 'pw', realm: 'edis' } }
// @ts-expect-error allowedIps are strings
const edisIps: EdisOptions = { allowedIps: [0x95_9a_9a_fb] }
// @ts-expect-error bodyLimit is a number of bytes
const edisLimit: EdisOptions = { bodyLimit: '16kb' }
// @ts-expect-error an unknown EDIS option (a typo of credentials)
const edisTypo: EdisOptions = { credential: { username: 'hook', password: 'pw' } }
// @ts-expect-error maxItems is Voximplant's
const edisMaxItems: EdisOptions = { maxItems: 5 }

// Voximplant: a static secret, or several, each optionally scoped to an account.
const voximplantConst: ProviderCallbacksOptions = { voximplant: { secret: [{ apiKey: 'k' }, { apiKey: 'k2', accountId: 1 }] as const, allowedIps: ['10.0.0.1'] as const } }
expectType<Equal<VoximplantOptions['path'], string | undefined>>()
expectType<Equal<VoximplantOptions['secret'], ScopedVoximplantSecret | readonly ScopedVoximplantSecret[] | undefined>>()
expectType<Equal<VoximplantOptions['getSecret'], VoximplantSecretLookup | undefined>>()
expectType<Equal<VoximplantOptions['allowedIps'], readonly string[] | undefined>>()
expectType<Equal<VoximplantOptions['bodyLimit'], number | undefined>>()
expectType<Equal<VoximplantOptions['maxItems'], number | undefined>>()
expectType<Equal<VoximplantSecret, { apiKey: string, salt?: string | undefined }>>()
expectType<Equal<ScopedVoximplantSecret, { apiKey: string, salt?: string | undefined, accountId?: number | string | undefined }>>()
const voxFull: VoximplantOptions = {
  path: '/vox',
  secret: [{ apiKey: 'k1', salt: 's1' }, { apiKey: 'k2', salt: '', accountId: 42 }, { apiKey: 'k3', accountId: '43' }],
  allowedIps: ['185.164.148.0/22'],
  bodyLimit: 1024 * 1024,
  maxItems: 100
}
await app.register(providerCallbacks, { voximplant: voxFull })
// A salt read from an unset env var is allowed by the types (undefined means no salt).
await app.register(providerCallbacks, { voximplant: { secret: { apiKey: 'k', salt: process.env.VOX_SALT } } })
// @ts-expect-error a secret has an apiKey
const voxNoKey: VoximplantOptions = { secret: { salt: 's' } }
// @ts-expect-error the apiKey is a string
const voxKeyNumber: VoximplantOptions = { secret: { apiKey: 1234 } }
// @ts-expect-error the salt is a string
const voxSaltNumber: VoximplantOptions = { secret: { apiKey: 'k', salt: 5 } }
// @ts-expect-error an accountId is a number or digits
const voxAccountBoolean: VoximplantOptions = { secret: { apiKey: 'k', accountId: true } }
// @ts-expect-error a secret is { apiKey, salt }, not the key alone
const voxBareKey: VoximplantOptions = { secret: 'the-api-key' }
// @ts-expect-error maxItems is a number
const voxMaxItems: VoximplantOptions = { secret: { apiKey: 'k' }, maxItems: '1000' }
// @ts-expect-error bodyLimit is a number
const voxBodyLimit: VoximplantOptions = { secret: { apiKey: 'k' }, bodyLimit: '1mb' }
// @ts-expect-error allowedIps is a list
const voxIps: VoximplantOptions = { secret: { apiKey: 'k' }, allowedIps: '185.164.148.0/22' }
// @ts-expect-error path is a string
const voxPath: VoximplantOptions = { secret: { apiKey: 'k' }, path: ['/vox'] }
// @ts-expect-error an unknown Voximplant option (a typo of secret)
const voxTypo: VoximplantOptions = { secrets: [{ apiKey: 'k' }] }

// Voximplant: getSecret, sync or async, answering one secret, several, or none.
expectType<Equal<Parameters<VoximplantSecretLookup>, [accountId: number, request: FastifyRequest]>>()
type Found = VoximplantSecret | readonly VoximplantSecret[] | null | undefined
expectType<Equal<ReturnType<VoximplantSecretLookup>, Found | Promise<Found>>>()
const one = { apiKey: 'k', salt: 's' }
const lookups: VoximplantSecretLookup[] = [
  () => one,
  () => [one, { apiKey: 'k2' }],
  () => [one, { apiKey: 'k2' }] as const,
  () => [],
  () => null,
  () => undefined,
  async () => one,
  async () => [one, { apiKey: 'k2', salt: undefined }],
  async () => null,
  async () => undefined,
  async (accountId, request) => {
    expectType<Equal<typeof accountId, number>>()
    expectType<Equal<typeof request, FastifyRequest>>()
    return accountId === 1 ? one : null
  },
  // Not every account needs the request, nor the account id.
  async accountId => (await Promise.resolve(new Map([[1, one]]))).get(accountId)
]
for (const getSecret of lookups) await app.register(providerCallbacks, { voximplant: { getSecret } })
// @ts-expect-error getSecret answers { apiKey, salt }, not the key alone
const lookupString: VoximplantOptions = { getSecret: () => 'the-api-key' }
// @ts-expect-error nor a promise of it
const lookupPromiseString: VoximplantOptions = { getSecret: async () => 'the-api-key' }
// @ts-expect-error a secret has an apiKey
const lookupNoKey: VoximplantOptions = { getSecret: async () => ({ salt: 's' }) }
// @ts-expect-error not found is null, undefined or [], not false
const lookupFalse: VoximplantOptions = { getSecret: () => false }
// @ts-expect-error getSecret gets the request second, as a FastifyRequest
const lookupRequest: VoximplantOptions = { getSecret: (_accountId: number, _request: string) => one }
// @ts-expect-error getSecret is a function
const lookupObject: VoximplantOptions = { getSecret: one }

// Idempotency: on by default, off with false, or options.
expectType<Equal<IdempotencyOptions['store'], IdempotencyStore | undefined>>()
expectType<Equal<IdempotencyOptions['claimTtl'], number | undefined>>()
expectType<Equal<IdempotencyOptions['edisWindow'], number | undefined>>()
expectType<Equal<IdempotencyOptions['voximplantWindow'], number | undefined>>()
expectType<Equal<IdempotencyOptions['failOpen'], boolean | undefined>>()
expectType<Equal<ProviderCallbacksOptions['handlerTimeout'], number | false | undefined>>()
const handlerTimeoutOff: ProviderCallbacksOptions = { edis: {}, handlerTimeout: false }
// @ts-expect-error handlerTimeout is in ms, or false
const handlerTimeoutString: ProviderCallbacksOptions = { edis: {}, handlerTimeout: '10s' }
// @ts-expect-error true is not a timeout
const handlerTimeoutTrue: ProviderCallbacksOptions = { edis: {}, handlerTimeout: true }
declare const redis: Redis
await app.register(providerCallbacks, { edis: {}, idempotency: {} })
await app.register(providerCallbacks, { edis: {}, idempotency: false })
await app.register(providerCallbacks, {
  edis: {},
  idempotency: { store: redisStore(redis, { prefix: 'app:' }), claimTtl: 10_000, edisWindow: 3_600_000, voximplantWindow: 86_400_000, failOpen: true }
})
await app.register(providerCallbacks, { edis: {}, idempotency: { store: memoryStore({ max: 100 }) } })
// @ts-expect-error idempotency is on by default; true is not an option
const idempotencyTrue: ProviderCallbacksOptions = { edis: {}, idempotency: true }
// @ts-expect-error a store is an IdempotencyStore
const storeEmpty: IdempotencyOptions = { store: {} }
// @ts-expect-error a Redis client is wrapped by redisStore, not passed as the store
const storeRedis: IdempotencyOptions = { store: redis }
// @ts-expect-error claimTtl is in ms
const ttlString: IdempotencyOptions = { claimTtl: '30s' }
// @ts-expect-error failOpen is a boolean
const failOpenString: IdempotencyOptions = { failOpen: 'yes' }
// @ts-expect-error an unknown idempotency option
const windowTypo: IdempotencyOptions = { window: 1000 }

export {
  edisConst, voximplantConst, handlerTimeoutOff, handlerTimeoutString, handlerTimeoutTrue, edisTrue, voximplantNull, edisPath, edisPassword, edisColon, edisRealm, edisIps, edisLimit, edisTypo, edisMaxItems,
  voxNoKey, voxKeyNumber, voxSaltNumber, voxAccountBoolean, voxBareKey, voxMaxItems, voxBodyLimit, voxIps, voxPath, voxTypo,
  lookupString, lookupPromiseString, lookupNoKey, lookupFalse, lookupRequest, lookupObject,
  idempotencyTrue, storeEmpty, storeRedis, ttlString, failOpenString, windowTypo
}
