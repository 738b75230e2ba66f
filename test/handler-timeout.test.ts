import { connect, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks from '../lib/index.js'
import { appWith, EDIS_BODIES, FORM, postBatch, signedItem, VOX } from './helpers.js'

const secret = { apiKey: VOX.apiKey, salt: VOX.salt }
const postEdis = (app: Awaited<ReturnType<typeof appWith>>['app'], body = EDIS_BODIES.canonical) =>
  app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: body })
const TIMEOUT_ANSWER = { status: 'error', message: 'The callback is still being processed; retry later.', code: 'FST_PROVIDER_CALLBACKS_HANDLER_TIMEOUT' }

t.test('a handler that never ends: 503 with Retry-After after handlerTimeout, and the server goes on serving', async t => {
  const { app } = await appWith({ edis: {}, handlerTimeout: 100, closeGracePeriod: 50 })
  t.teardown(() => app.close())
  app.providerCallbacks.on('traffic-threshold', event => event.payload.kvm === 'kvm_123456_789012' ? new Promise<void>(() => {}) : undefined)
  const started = Date.now()
  const hanging = postEdis(app)
  // While it hangs, other callbacks are answered at once.
  const other = await postEdis(app, EDIS_BODIES.percentTwenty)
  t.equal(other.statusCode, 200)
  t.ok(Date.now() - started < 100, 'answered before the hanging one timed out')
  const res = await hanging
  t.equal(res.statusCode, 503)
  t.same(res.json(), TIMEOUT_ANSWER)
  t.equal(res.headers['retry-after'], '30')
  t.ok(Date.now() - started >= 95, 'not before handlerTimeout')
})

t.test('with idempotency, a retry of a timed-out event finds it in flight, then done: it never runs twice', async t => {
  const { app } = await appWith({ edis: {}, idempotency: {}, handlerTimeout: 50 })
  t.teardown(() => app.close())
  let runs = 0
  app.providerCallbacks.on('traffic-threshold', async () => {
    runs++
    await sleep(250)
  })
  t.equal((await postEdis(app)).statusCode, 503, 'still running at 50 ms')
  t.equal((await postEdis(app)).statusCode, 409, 'the retry: in flight')
  await sleep(300)
  t.equal((await postEdis(app)).statusCode, 200, 'the next retry: done')
  t.equal(runs, 1)
})

t.test('a timed-out handler that then fails releases its claim: the retry runs it again', async t => {
  const { app } = await appWith({ edis: {}, idempotency: {}, handlerTimeout: 50 })
  t.teardown(() => app.close())
  let runs = 0
  app.providerCallbacks.on('traffic-threshold', async () => {
    runs++
    if (runs === 1) {
      await sleep(150)
      throw new Error('late failure')
    }
  })
  t.equal((await postEdis(app)).statusCode, 503)
  await sleep(200)
  t.equal((await postEdis(app)).statusCode, 200)
  t.equal(runs, 2)
})

t.test('a batch whose handler outlives the timeout: every item still runs once, in order, and the retry is acknowledged', async t => {
  const { app } = await appWith({ voximplant: { secret }, idempotency: {}, handlerTimeout: 50 })
  t.teardown(() => app.close())
  const runs: number[] = []
  app.providerCallbacks.onAny(async event => {
    const id = (event.payload as { callback_id: number }).callback_id
    runs.push(id)
    if (id === 2) await sleep(150)
  })
  const batch = [1, 2, 3].map(id => signedItem('min_balance', id))
  t.equal((await postBatch(app, batch)).statusCode, 503)
  await sleep(200)
  t.same(runs, [1, 2, 3], 'the items after the slow one ran too, after the answer')
  t.equal((await postBatch(app, batch)).statusCode, 200)
  t.same(runs, [1, 2, 3], 'nothing ran twice')
})

t.test('handlerTimeout: false waits for the handlers however long they take', async t => {
  const { app } = await appWith({ edis: {}, voximplant: { secret }, handlerTimeout: false })
  t.teardown(() => app.close())
  app.providerCallbacks.onAny(async () => { await sleep(120) })
  const started = Date.now()
  t.equal((await postEdis(app)).statusCode, 200)
  t.ok(Date.now() - started >= 115, 'the answer waited for the handler')
  t.equal((await postBatch(app, [signedItem('min_balance', 1)])).statusCode, 200)
})

t.test('handlerTimeout must be a positive integer or false', async t => {
  for (const handlerTimeout of [0, -1, 1.5, '100', true]) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(providerCallbacks, { edis: {}, handlerTimeout: handlerTimeout as number }) }, { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /handlerTimeout/ })
    await app.close()
  }
})

// Fastify's own timeouts bound what happens before the handlers: a sender that stops sending its
// body holds nothing once connectionTimeout (the socket's idle time) has passed.
t.test('over a real socket: a body that stops coming is cut off by Fastify\'s connectionTimeout, and nothing is emitted', async t => {
  const { app, events } = await appWith({ edis: {}, voximplant: { secret } }, { connectionTimeout: 200 })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  for (const [path, type] of [['/callbacks/edis', FORM], ['/callbacks/voximplant', 'application/json']]) {
    const started = Date.now()
    const closed = await new Promise<number>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: 1000\r\n\r\n${'k'.repeat(10)}`)
      })
      socket.on('data', () => {})
      socket.on('close', () => resolve(Date.now() - started))
      socket.on('error', reject)
    })
    t.ok(closed >= 190 && closed < 5000, `${path}: the stalled connection was closed after the idle timeout (${closed} ms)`)
  }
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(res.statusCode, 200, 'and the server serves the next request')
  t.equal(events.length, 1)
})
