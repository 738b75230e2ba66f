// Type tests, checked by `tsc -p test/types` (npm run test:types). A line that stops compiling,
// or a @ts-expect-error that stops erroring, fails the run.
import Fastify, { type FastifyRequest } from 'fastify'
import providerCallbacks, {
  type AnyProviderCallbackEvent, type EdisTrafficThreshold, type ProviderCallbackEvent,
  type ProviderCallbackHandler, type ProviderCallbacksOptions, providerCallbacks as named,
  UnauthorizedError
} from '../../lib/index.js'

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
  if (event.name === 'traffic-threshold') expectType<Equal<typeof event.payload.trigger_value, number | 'demo'>>()
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

// Internal members are not part of the public type.
// @ts-expect-error deliver is internal
app.providerCallbacks.deliver // eslint-disable-line @typescript-eslint/no-unused-expressions

export { typo, handlers, unauthorized }
