import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks, { type AnyProviderCallbackEvent, type ProviderCallbackHandler } from '../lib/index.js'
import { EDIS_BODIES, FORM } from './helpers.js'

async function app (options = {}) {
  const instance = Fastify()
  // Off: these tests deliver the same callback again on purpose.
  await instance.register(providerCallbacks, { edis: {}, idempotency: false, ...options })
  return instance
}
const deliver = (instance: Awaited<ReturnType<typeof app>>, body = EDIS_BODIES.canonical) =>
  instance.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: body })

t.test('handlers from the option and from on() both run, with the request', async t => {
  const seen: string[] = []
  const instance = await app({ handlers: { 'traffic-threshold': async (event: AnyProviderCallbackEvent) => { seen.push(`option:${event.id}`) } } })
  t.teardown(() => instance.close())
  instance.providerCallbacks.on('traffic-threshold', (event, request) => {
    seen.push(`on:${event.payload.kvm}:${request.url}`)
  })
  instance.providerCallbacks.onAny(event => { seen.push(`any:${event.name}`) })
  t.equal((await deliver(instance)).statusCode, 200)
  t.same(seen.sort(), ['any:traffic-threshold', 'on:kvm_123456_789012:/callbacks/edis', 'option:edis:kvm_123456_789012:80'])
})

t.test('the answer waits for every handler', async t => {
  const instance = await app()
  t.teardown(() => instance.close())
  let done = 0
  for (const delay of [30, 10]) {
    instance.providerCallbacks.on('traffic-threshold', async () => {
      await new Promise(resolve => setTimeout(resolve, delay))
      done++
    })
  }
  await deliver(instance)
  t.equal(done, 2)
})

t.test('off() and offAny() stop a handler; others stay', async t => {
  const instance = await app()
  t.teardown(() => instance.close())
  const calls: string[] = []
  const a: ProviderCallbackHandler = () => { calls.push('a') }
  const b: ProviderCallbackHandler = () => { calls.push('b') }
  const any: ProviderCallbackHandler = () => { calls.push('any') }
  instance.providerCallbacks.on('traffic-threshold', a).on('traffic-threshold', b).onAny(any)
  await deliver(instance)
  instance.providerCallbacks.off('traffic-threshold', a).offAny(any)
  await deliver(instance)
  instance.providerCallbacks.off('traffic-threshold', b).off('traffic-threshold', b)
  await deliver(instance)
  t.same(calls, ['a', 'b', 'any', 'b'])
})

t.test('a handler removed during a delivery does not disturb it', async t => {
  const instance = await app()
  t.teardown(() => instance.close())
  const calls: string[] = []
  const second: ProviderCallbackHandler = () => { calls.push('second') }
  instance.providerCallbacks.on('traffic-threshold', () => {
    calls.push('first')
    instance.providerCallbacks.off('traffic-threshold', second)
  })
  instance.providerCallbacks.on('traffic-threshold', second)
  await deliver(instance)
  await deliver(instance)
  t.same(calls, ['first', 'second', 'first'])
})

t.test('when several handlers fail, all still run and the answer is one 500', async t => {
  const lines: Array<Record<string, any>> = []
  const instance = Fastify({ logger: { level: 'error', stream: { write: (l: string) => { lines.push(JSON.parse(l)) } } } })
  t.teardown(() => instance.close())
  await instance.register(providerCallbacks, { edis: {} })
  let ran = 0
  instance.providerCallbacks.on('traffic-threshold', async () => { ran++; throw new Error('first') })
  instance.providerCallbacks.on('traffic-threshold', async () => { ran++ })
  instance.providerCallbacks.onAny(async () => { ran++; throw new Error('second') })
  const res = await deliver(instance)
  t.equal(res.statusCode, 500)
  t.equal(ran, 3)
  const failures = lines.filter(l => l.msg === 'a \'traffic-threshold\' handler failed')
  t.same(failures.map(l => [l.event, l.err.message]).sort(), [['edis:kvm_123456_789012:80', 'first'], ['edis:kvm_123456_789012:80', 'second']], 'each failure is logged with its event')
  t.equal(lines.find(l => l.msg === 'provider callback failed')?.code, 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED')
})

t.test('on() refuses unknown names and non-functions at run time too', async t => {
  const instance = await app()
  t.teardown(() => instance.close())
  const events = instance.providerCallbacks as unknown as { on: (n: string, h: unknown) => void, onAny: (h: unknown) => void }
  t.throws(() => events.on('traffic', () => {}), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /unknown event name 'traffic'/ })
  t.throws(() => events.on('traffic-threshold', 'nope'), { message: /must be a function/ })
  t.throws(() => events.onAny(undefined), { message: /the onAny handler must be a function/ })
})
