// Type tests, checked by `tsc -p test/types` (npm run test:types). A line that stops compiling,
// or a @ts-expect-error that stops erroring, fails the run.
import Fastify, { type FastifyRequest } from 'fastify'
import providerCallbacks, {
  type AnyProviderCallbackEvent, type EdisTrafficThreshold, type ProviderCallbackEvent,
  type ProviderCallbackHandler, type ProviderCallbacksOptions, providerCallbacks as named,
  UnauthorizedError, type VoximplantCallback, VoximplantCallbackSchemas, type VoximplantCallbackType,
  memoryStore, redisStore, type ClaimResult, type IdempotencyStore, type RedisClientLike
} from '../../lib/index.js'
import type { Static } from '@sinclair/typebox'
import { deliver, edisTrafficBody, voximplantBatch, voximplantCallback } from '../../lib/testing.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T extends true> (_check?: T): void {}

const app = Fastify()
await app.register(providerCallbacks, { edis: {} })
await app.register(named, { prefix: '/x', edis: { credentials: [{ username: 'u', password: 'p' }], allowedIps: ['10.0.0.0/8'] } })

// A known event's payload is typed exactly.
app.providerCallbacks.on('traffic-threshold', async (event, request) => {
  expectType<Equal<typeof event.name, 'traffic-threshold'>>()
  expectType<Equal<typeof event.provider, 'edis'>>()
  expectType<Equal<typeof event.id, string>>()
  expectType<Equal<typeof event.receivedAt, Date>>()
  expectType<Equal<typeof event.payload, { kvm: string, details?: string, trigger_value: number | 'demo' }>>()
  expectType<Equal<typeof event.payload, EdisTrafficThreshold>>()
  expectType<Equal<typeof request, FastifyRequest>>()
  // @ts-expect-error credentials never reach the payload
  event.payload.callback_pw // eslint-disable-line @typescript-eslint/no-unused-expressions
})

// A typo in an event name does not compile, in on(), off() and the handlers option.
// @ts-expect-error unknown event name
app.providerCallbacks.on('traffic-treshold', () => {})
// @ts-expect-error unknown event name
app.providerCallbacks.off('min_balance', () => {})
// @ts-expect-error unknown event name in the handlers option
const typo: ProviderCallbacksOptions = { edis: {}, handlers: { 'traffic-treshold': () => {} } }

// A handler for one event does not fit another's payload.
const wrongPayload = (_event: ProviderCallbackEvent<'traffic-threshold', 'edis', { kvm: number }>): void => {}
// @ts-expect-error the payload's kvm is a string
app.providerCallbacks.on('traffic-threshold', wrongPayload)

// onAny gets every known event; narrowing on the name narrows the payload.
app.providerCallbacks.onAny(event => {
  expectType<Equal<typeof event, AnyProviderCallbackEvent>>()
  if (event.provider === 'edis') expectType<Equal<typeof event.payload.trigger_value, number | 'demo'>>()
  // A Voximplant event may be of a type this version does not know: its payload is the common fields.
  if (event.provider === 'voximplant') expectType<Equal<typeof event.payload.callback_id, number>>()
})

// Handlers may be sync or async, and on/off/onAny chain.
const sync: ProviderCallbackHandler = () => {}
app.providerCallbacks.onAny(sync).offAny(sync).on('traffic-threshold', async () => {}).off('traffic-threshold', sync)

// The options are checked.
// @ts-expect-error credentials need a password
await app.register(providerCallbacks, { edis: { credentials: { username: 'u' } } })
// @ts-expect-error allowedIps is a list
await app.register(providerCallbacks, { edis: { allowedIps: '10.0.0.1' } })
// @ts-expect-error unknown option
await app.register(providerCallbacks, { edis: {}, secrett: 'x' })
const handlers: ProviderCallbacksOptions = { edis: false, handlers: { 'traffic-threshold': async event => { expectType<Equal<typeof event.payload, EdisTrafficThreshold>>() } } }

// Errors carry their code and status in their types.
const unauthorized = new UnauthorizedError()
expectType<Equal<typeof unauthorized.code, 'FST_PROVIDER_CALLBACKS_UNAUTHORIZED'>>()
expectType<Equal<typeof unauthorized.statusCode, 401>>()

// Voximplant: one typed event per type, named by its kebab-case.
await app.register(providerCallbacks, { voximplant: { secret: { apiKey: 'k', salt: 's' } } })
await app.register(providerCallbacks, { voximplant: { secret: [{ apiKey: 'k' }, { apiKey: 'k2', salt: 's', accountId: 42 }] } })
await app.register(providerCallbacks, { voximplant: { getSecret: async (accountId: number) => accountId === 1 ? { apiKey: 'k' } : null } })
await app.register(providerCallbacks, { voximplant: { getSecret: () => [{ apiKey: 'k' }, { apiKey: 'k2', salt: '' }] } })
// @ts-expect-error getSecret gets the account id as a number
await app.register(providerCallbacks, { voximplant: { getSecret: (accountId: string) => ({ apiKey: accountId }) } })

app.providerCallbacks.on('min-balance', e => {
  expectType<Equal<typeof e.payload.min_balance.is_repeated, boolean>>()
  expectType<Equal<typeof e.payload.min_balance.is_min_credit, boolean>>()
  expectType<Equal<typeof e.payload.balance, number>>()
  expectType<Equal<typeof e.payload.callback_id, number>>()
  expectType<Equal<typeof e.payload.account_id, number>>()
  expectType<Equal<typeof e.payload.type, 'min_balance'>>()
  expectType<Equal<typeof e.provider, 'voximplant'>>()
  expectType<Equal<typeof e.name, 'min-balance'>>()
  expectType<Equal<typeof e.payload, VoximplantCallback<'min_balance'>>>()
  expectType<Equal<typeof e.payload, Static<typeof VoximplantCallbackSchemas.min_balance>>>()
})
app.providerCallbacks.on('sms-inbound', e => {
  type Sms = typeof e.payload.sms_inbound.sms_inbound
  expectType<Equal<Sms['source_number'], string | undefined>>()
  expectType<Equal<Sms['destination_number'], string | undefined>>()
  expectType<Equal<Sms['sms_body'], string | undefined>>()
})
app.providerCallbacks.on('account-is-frozen', e => {
  expectType<Equal<typeof e.payload.type, 'account_is_frozen'>>()
})
app.providerCallbacks.on('invoice-received', e => {
  expectType<Equal<typeof e.payload.invoice_received.amount, string>>()
})
// @ts-expect-error events are named in kebab-case, not by the wire type
app.providerCallbacks.on('sms_inbound', () => {})
// @ts-expect-error a payload of one type is not another's
app.providerCallbacks.on('card-payment', (_e: { payload: VoximplantCallback<'min_balance'> }) => {})
const everyType: VoximplantCallbackType[] = ['min_balance', 'new_invoice', 'plan_config']
// @ts-expect-error not a known type
const notAType: VoximplantCallbackType = 'min-balance'

// Idempotency: the stores, and a store of one's own.
await app.register(providerCallbacks, { edis: {}, idempotency: { store: memoryStore({ max: 10 }), claimTtl: 5000, failOpen: false } })
await app.register(providerCallbacks, { edis: {}, idempotency: false })
const own: IdempotencyStore = {
  claim: async (_key: string, _owner: string, _ttl: number): Promise<ClaimResult> => 'claimed',
  complete: async () => {},
  release: async () => {}
}
await app.register(providerCallbacks, { edis: {}, idempotency: { store: own } })
// @ts-expect-error claim must answer one of the three results
const badStore: IdempotencyStore = { claim: async () => 'ok', complete: async () => {}, release: async () => {} }
declare const redis: RedisClientLike
redisStore(redis, { prefix: 'app:' })
expectType<Equal<ReturnType<typeof memoryStore>['size'], number>>()

// The test kit: items typed by their type's schema, fields checked.
const kitSecret = { apiKey: 'k', salt: 's' }
const kitItem = voximplantCallback('min_balance', kitSecret)
expectType<Equal<typeof kitItem, VoximplantCallback<'min_balance'>>>()
expectType<Equal<typeof kitItem.min_balance.is_repeated, boolean>>()
voximplantCallback('sms_inbound', { account_id: 42 }, kitSecret)
// @ts-expect-error balance is a number
voximplantCallback('min_balance', { balance: 'lots' }, kitSecret)
// @ts-expect-error not a known type
voximplantCallback('min-balance', kitSecret)
const kitBatch = voximplantBatch([kitItem])
expectType<Equal<typeof kitBatch.callbacks[0], VoximplantCallback<'min_balance'>>>()
edisTrafficBody({ trigger_value: 'demo' }, { encoding: 'raw' })
// @ts-expect-error encoding is form or raw
edisTrafficBody({}, { encoding: 'base64' })
const delivered = await deliver(app, kitBatch)
expectType<Equal<typeof delivered.events, AnyProviderCallbackEvent[]>>()
expectType<Equal<typeof delivered.statusCode, number>>()

// Internal members are not part of the public type.
// @ts-expect-error deliver is internal
app.providerCallbacks.deliver // eslint-disable-line @typescript-eslint/no-unused-expressions

export { typo, handlers, unauthorized, everyType, notAType, badStore, delivered }
