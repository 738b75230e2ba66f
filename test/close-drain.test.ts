// app.close() and the handlers still running: they finish and are recorded before the host's
// store client goes away, up to closeGracePeriod; past it their signals are aborted.
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import providerCallbacks, { memoryStore, redisStore, type IdempotencyStore } from '../lib/index.js'
import { EDIS_BODIES, FORM, gate } from './helpers.js'
import { cleanKeys, REDIS_URL, redisAvailable } from './redis-helpers.js'

const EDIS_ID = 'edis:kvm_123456_789012:80'
const postEdis = (app: FastifyInstance) => app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })

t.test('close waits for a handler past handlerTimeout and records it, before a host onClose hook closes the store', async t => {
  const inner = memoryStore()
  let clientClosed = false
  const whileOpen = <A extends unknown[], R>(call: (...args: A) => R) => async (...args: A): Promise<R> => {
    if (clientClosed) throw new Error('the client is closed')
    return call(...args)
  }
  const store: IdempotencyStore = { claim: whileOpen(inner.claim), refresh: whileOpen(inner.refresh), complete: whileOpen(inner.complete), release: whileOpen(inner.release) }
  const app = Fastify()
  await app.register(providerCallbacks, { edis: {}, idempotency: { store }, handlerTimeout: 50 })
  // Registered after the plugin, so it runs before the plugin's own onClose hooks would.
  app.addHook('onClose', async () => { clientClosed = true })
  const slow = gate()
  const order: string[] = []
  app.providerCallbacks.on('traffic-threshold', async () => {
    await slow.pass()
    order.push('handler done')
  })
  const res = await postEdis(app)
  t.equal(res.statusCode, 503, 'answered at handlerTimeout; the handler goes on')
  const closed = app.close().then(() => { order.push('closed') })
  await new Promise(resolve => setImmediate(resolve))
  t.same(order, [], 'close is waiting')
  slow.open()
  await closed
  t.same(order, ['handler done', 'closed'])
  t.equal(inner.claim(EDIS_ID, 'probe', 1000), 'done', 'its success was recorded before the client closed')
})

t.test('past closeGracePeriod, close goes on: the signal of a handler still running is aborted', async t => {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  await app.register(providerCallbacks, { edis: {}, handlerTimeout: 20, closeGracePeriod: 100 })
  let reason: unknown
  app.providerCallbacks.on('traffic-threshold', async (_event, _request, { signal }) => {
    await new Promise(resolve => signal.addEventListener('abort', resolve))
    reason = signal.reason
  })
  t.equal((await postEdis(app)).statusCode, 503)
  await app.close()
  t.match(reason, { code: 'FST_PROVIDER_CALLBACKS_CLOSING' }, 'the handler was told')
  t.ok(lines.some(line => line.msg === 'closing with callback handlers still running; their signals are aborted' && line.events === 1))
})

t.test('without idempotency too, close waits for running handlers', async t => {
  const app = Fastify()
  await app.register(providerCallbacks, { edis: {}, idempotency: false, handlerTimeout: 20 })
  const slow = gate()
  let done = false
  app.providerCallbacks.on('traffic-threshold', async () => {
    await slow.pass()
    done = true
  })
  t.equal((await postEdis(app)).statusCode, 503)
  const closed = app.close()
  setImmediate(slow.open)
  await closed
  t.equal(done, true)
})

t.test('docs/guarantee.md\'s Redis setup: a handler past handlerTimeout is recorded in Redis before onClose disconnects the client', async t => {
  if (!await redisAvailable(t)) return
  const redis = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000, lazyConnect: true })
  redis.on('error', () => {})
  await redis.connect()
  const prefix = cleanKeys(t, `close-drain:${randomUUID()}:`)
  const app = Fastify()
  app.addHook('onClose', async () => { redis.disconnect() })
  await app.register(providerCallbacks, { edis: {}, idempotency: { store: redisStore(redis, { prefix }) }, handlerTimeout: 50 })
  const slow = gate()
  app.providerCallbacks.on('traffic-threshold', async () => { await slow.pass() })
  t.equal((await postEdis(app)).statusCode, 503)
  const closed = app.close()
  setImmediate(slow.open)
  await closed
  const check = new Redis(REDIS_URL)
  t.teardown(() => check.disconnect())
  t.equal(await check.get(prefix + EDIS_ID), 'done', 'recorded: a rolling restart does not run it again')
})

t.test('close waits for the record of a handler that finished at once, while the store is retried', async t => {
  const inner = memoryStore()
  let completeFails = true
  let clientClosed = false
  const store: IdempotencyStore = {
    ...inner,
    complete: (key, owner, ttl) => {
      if (clientClosed) throw new Error('the client is closed')
      if (completeFails) throw new Error('store blinked')
      inner.complete(key, owner, ttl)
    }
  }
  const app = Fastify()
  await app.register(providerCallbacks, { edis: {}, idempotency: { store }, handlerTimeout: 50 })
  app.addHook('onClose', async () => { clientClosed = true })
  app.providerCallbacks.on('traffic-threshold', () => {})
  t.equal((await postEdis(app)).statusCode, 503, 'the record outlived handlerTimeout')
  const closed = app.close()
  setImmediate(() => { completeFails = false })
  await closed
  t.equal(inner.claim(EDIS_ID, 'probe', 1000), 'done', 'recorded before the client closed')
})
