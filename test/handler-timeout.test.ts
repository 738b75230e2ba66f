// handlerTimeout, without a race against the machine's speed: a handler "still running" is one
// waiting at a gate the test opens (test/helpers.ts), and "once handlerTimeout has passed" is a
// fake clock the test moves. The real 50 ms timeouts below can only fire first: nothing else can end.
import { connect, type AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks from '../lib/index.js'
import { appWith, EDIS_BODIES, fakeClock, FORM, gate, nextTurn, postBatch, signedItem, VOX } from './helpers.js'

const secret = { apiKey: VOX.apiKey, salt: VOX.salt }
const postEdis = (app: Awaited<ReturnType<typeof appWith>>['app'], body = EDIS_BODIES.canonical) =>
  app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: body })
const TIMEOUT_ANSWER = { status: 'error', message: 'The callback is still being processed; retry later.', code: 'FST_PROVIDER_CALLBACKS_HANDLER_TIMEOUT' }

/** Whether a request has been answered yet, without waiting for it. */
function tracked<T> (request: Promise<T>): { answer: Promise<T>, answered: () => boolean } {
  let done = false
  const answer = request.finally(() => { done = true })
  return { answer, answered: () => done }
}

t.test('a handler that never ends: 503 with Retry-After once handlerTimeout has passed, and the server goes on serving', async t => {
  // It never ends: app.close() waits closeGracePeriod for it, then aborts its signal and goes on.
  const { app } = await appWith({ edis: {}, handlerTimeout: 100, closeGracePeriod: 50 })
  t.teardown(() => app.close())
  const hang = gate()
  app.providerCallbacks.on('traffic-threshold', event => event.payload.kvm === 'kvm_123456_789012' ? hang.pass() : undefined)
  const clock = fakeClock(t, ['setTimeout'])
  const hanging = tracked(postEdis(app))
  await hang.reached
  // While it hangs, other callbacks are answered at once: the clock has not moved.
  t.equal((await postEdis(app, EDIS_BODIES.percentTwenty)).statusCode, 200)
  t.notOk(hanging.answered(), 'answered before the hanging one timed out')
  clock.tick(99)
  await nextTurn()
  t.notOk(hanging.answered(), 'not before handlerTimeout')
  clock.tick(1)
  const res = await hanging.answer
  t.equal(res.statusCode, 503, 'at handlerTimeout')
  t.same(res.json(), TIMEOUT_ANSWER)
  t.equal(res.headers['retry-after'], '30')
})

t.test('with idempotency, a retry of a timed-out event finds it in flight, then done: it never runs twice', async t => {
  const { app } = await appWith({ edis: {}, idempotency: {}, handlerTimeout: 50 })
  t.teardown(() => app.close())
  let runs = 0
  const slow = gate()
  app.providerCallbacks.on('traffic-threshold', async () => {
    runs++
    await slow.pass()
  })
  t.equal((await postEdis(app)).statusCode, 503, 'still running at 50 ms')
  t.equal((await postEdis(app)).statusCode, 409, 'the retry: in flight')
  slow.open()
  await nextTurn()
  t.equal((await postEdis(app)).statusCode, 200, 'the next retry, once it finished: done')
  t.equal(runs, 1)
})

t.test('a timed-out handler that then fails releases its claim: the retry runs it again', async t => {
  const { app } = await appWith({ edis: {}, idempotency: {}, handlerTimeout: 50 })
  t.teardown(() => app.close())
  let runs = 0
  const slow = gate()
  app.providerCallbacks.on('traffic-threshold', async () => {
    runs++
    if (runs === 1) await slow.pass()
  })
  t.equal((await postEdis(app)).statusCode, 503)
  slow.fail(new Error('late failure'))
  await nextTurn()
  t.equal((await postEdis(app)).statusCode, 200)
  t.equal(runs, 2)
})

t.test('a batch whose handler outlives the timeout: every item still runs once, in order, and the retry is acknowledged', async t => {
  const { app } = await appWith({ voximplant: { secret }, idempotency: {}, handlerTimeout: 50 })
  t.teardown(() => app.close())
  const runs: number[] = []
  const slow = gate()
  app.providerCallbacks.onAny(async event => {
    const id = (event.payload as { callback_id: number }).callback_id
    runs.push(id)
    if (id === 2) await slow.pass()
  })
  const batch = [1, 2, 3].map(id => signedItem('min_balance', id))
  t.equal((await postBatch(app, batch)).statusCode, 503)
  t.same(runs, [1, 2], 'the item after the slow one waits for it')
  slow.open()
  await nextTurn()
  t.same(runs, [1, 2, 3], 'then it runs too, after the answer')
  t.equal((await postBatch(app, batch)).statusCode, 200)
  t.same(runs, [1, 2, 3], 'nothing ran twice')
})

t.test('handlerTimeout: false waits for the handlers however long they take', async t => {
  const { app } = await appWith({ edis: {}, voximplant: { secret }, handlerTimeout: false })
  t.teardown(() => app.close())
  const slow = { edis: gate(), voximplant: gate() }
  app.providerCallbacks.onAny(event => slow[event.provider].pass())
  const clock = fakeClock(t, ['setTimeout'])
  const edis = tracked(postEdis(app))
  const vox = tracked(postBatch(app, [signedItem('min_balance', 1)]))
  await Promise.all([slow.edis.reached, slow.voximplant.reached])
  // An hour on: far past the default handlerTimeout (10 s), which false must not fall back to.
  clock.tick(60 * 60 * 1000)
  await nextTurn()
  t.notOk(edis.answered() || vox.answered(), 'an hour on, the answers still wait for the handlers')
  slow.edis.open()
  slow.voximplant.open()
  t.equal((await edis.answer).statusCode, 200)
  t.equal((await vox.answer).statusCode, 200)
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
    // The test never closes the socket: only the server's idle timeout can, and without a word.
    const answer = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = []
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: 1000\r\n\r\n${'k'.repeat(10)}`)
      })
      socket.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
      socket.on('error', reject)
    })
    t.equal(answer, '', `${path}: the stalled connection was closed by the server, unanswered`)
  }
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(res.statusCode, 200, 'and the server serves the next request')
  t.equal(events.length, 1)
})
