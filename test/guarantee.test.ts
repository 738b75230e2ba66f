// The delivery guarantee, case by case: each test builds one way an event could run twice or be
// lost, and checks that it does not (docs/guarantee.md: "The guarantee, stated exactly").
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import providerCallbacks, { memoryStore, type IdempotencyStore, type ProviderCallbacksOptions } from '../lib/index.js'
import { EDIS_BODIES, fakeClock, FORM, gate, nextTurn } from './helpers.js'

const EDIS_ID = 'edis:kvm_123456_789012:80'

async function appWithStore (store: IdempotencyStore, options: Partial<ProviderCallbacksOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(providerCallbacks, { edis: {}, ...options, idempotency: { store, ...options.idempotency as object } })
  await app.ready()
  return app
}
const postEdis = (app: FastifyInstance) => app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })

t.test('a handler removed with off() while the claim is on its way: nothing ran, so nothing is recorded as done', async t => {
  const memory = memoryStore()
  // Reached when the claim is sent; opened when the test lets the store answer it.
  const claimMayAnswer = gate()
  const store: IdempotencyStore = {
    ...memory,
    claim: async (key, owner, ttl) => {
      await claimMayAnswer.pass()
      return memory.claim(key, owner, ttl)
    }
  }
  const app = await appWithStore(store)
  t.teardown(() => app.close())
  const runs: string[] = []
  const handler = (event: { id: string }): void => { runs.push(event.id) }
  app.providerCallbacks.on('traffic-threshold', handler)
  const answer = postEdis(app)
  await claimMayAnswer.reached
  app.providerCallbacks.off('traffic-threshold', handler)
  claimMayAnswer.open()
  t.equal((await answer).statusCode, 200, 'acknowledged, as an event nobody listens to is')
  t.same(runs, [])
  t.equal(memory.claim(EDIS_ID, 'probe', 1000), 'claimed', 'the claim was released, not recorded as done')
  memory.release(EDIS_ID, 'probe')
  app.providerCallbacks.on('traffic-threshold', handler)
  t.equal((await postEdis(app)).statusCode, 200)
  t.same(runs, [EDIS_ID], 'a handler added later gets the redelivery')
})

t.test('a handler whose answer has a throwing `then` getter failed: a 500 HANDLER_FAILED, and its claim is released', async t => {
  const store = memoryStore()
  const app = await appWithStore(store)
  t.teardown(() => app.close())
  let hostile = true
  const runs: string[] = []
  app.providerCallbacks.on('traffic-threshold', event => {
    runs.push(event.id)
    if (!hostile) return
    // A value whose `then` throws when looked at: neither a promise nor a plain value.
    return Object.defineProperty({}, 'then', { get () { throw new Error('then getter') } }) as never
  })
  const first = await postEdis(app)
  t.equal(first.statusCode, 500)
  t.equal(first.json().code, 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED')
  hostile = false
  t.equal((await postEdis(app)).statusCode, 200, 'the redelivery is not blocked by a leaked claim')
  t.same(runs, [EDIS_ID, EDIS_ID])
})

/** An app whose log lines (warn and above) are kept, parsed. */
async function loggedApp (store: IdempotencyStore, options: Partial<ProviderCallbacksOptions> = {}): Promise<{ app: FastifyInstance, lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  await app.register(providerCallbacks, { edis: {}, ...options, idempotency: { store, ...options.idempotency as object } })
  await app.ready()
  return { app, lines }
}

/** Resolves once `predicate` holds, looked at on every turn of the event loop (order, not time). */
async function until (predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise(resolve => setImmediate(resolve))
}

/** A memory store whose refresh and complete calls are counted, and fail while told to. */
function flaky (inner = memoryStore()) {
  const calls = { refresh: 0, complete: 0 }
  const fail = { refresh: 0, complete: 0, refreshForever: false, completeForever: false }
  const store: IdempotencyStore = {
    claim: async (key, owner, ttl) => inner.claim(key, owner, ttl),
    refresh: async (key, owner, ttl) => {
      calls.refresh++
      if (fail.refreshForever || fail.refresh-- > 0) throw new Error('store down (refresh)')
      return inner.refresh(key, owner, ttl)
    },
    complete: async (key, owner, ttl) => {
      calls.complete++
      if (fail.completeForever || fail.complete-- > 0) throw new Error('store down (complete)')
      inner.complete(key, owner, ttl)
    },
    release: async (key, owner) => { inner.release(key, owner) }
  }
  return { store, inner, calls, fail }
}

t.test('memoryStore never drops the claim of a running handler, however many events pass meanwhile', async t => {
  const store = memoryStore({ max: 10 })
  t.equal(store.claim('held', 'runner', 60_000), 'claimed')
  for (let i = 0; i < 100; i++) {
    store.claim(`k${i}`, 'o', 60_000)
    store.complete(`k${i}`, 'o', 60_000)
  }
  t.equal(store.claim('held', 'another', 60_000), 'in-flight', 'ten times max later, still held')
  t.equal(store.refresh('held', 'runner', 60_000), true, 'and its owner still refreshes it')
  store.complete('held', 'runner', 60_000)
  t.equal(store.claim('held', 'another', 60_000), 'done')

  // Through the plugin: a slow handler's event is redelivered after 30 others went through.
  const app = await appWithStore(memoryStore({ max: 10 }))
  t.teardown(() => app.close())
  const slow = gate()
  const runs: string[] = []
  app.providerCallbacks.on('traffic-threshold', async event => {
    runs.push(event.id)
    if (event.payload.kvm === 'kvm_123456_789012') await slow.pass()
  })
  const first = postEdis(app)
  await until(() => runs.length === 1)
  for (let i = 0; i < 30; i++) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `kvm=kvm_${i}&trigger_value=80` })
    t.equal(res.statusCode, 200) || t.bailout()
  }
  t.equal((await postEdis(app)).statusCode, 409, 'the redelivery finds it in flight, not free')
  slow.open()
  t.equal((await first).statusCode, 200)
  t.equal((await postEdis(app)).statusCode, 200)
  t.equal(runs.filter(id => id === EDIS_ID).length, 1, 'it ran once')
})

t.test('memoryStore keeps a done key while it is among the newest max', async t => {
  for (const max of [1, 2, 10, 11, 1000]) {
    const store = memoryStore({ max })
    store.claim('first', 'o', 60_000)
    store.complete('first', 'o', 60_000)
    for (let i = 0; i < max - 1; i++) {
      store.claim(`k${i}`, 'o', 60_000)
      store.complete(`k${i}`, 'o', 60_000)
    }
    t.equal(store.claim('first', 'o', 60_000), 'done', `max ${max}: ${max - 1} newer keys later, still done`)
  }
})

t.test('a refresh that fails is retried at once and until the claim\'s expiry: an outage shorter than that keeps the claim', async t => {
  const { store, calls, fail } = flaky()
  // Refreshed every second; the outage starts with the first refresh and outlasts the second tick
  // (6 failures: at once, then every 100 ms), well within the claim's expiry at 3 s.
  fail.refresh = 6
  const { app, lines } = await loggedApp(store, { idempotency: { claimTtl: 3000 } })
  t.teardown(() => app.close())
  const slow = gate()
  let runs = 0
  app.providerCallbacks.on('traffic-threshold', async () => {
    runs++
    await slow.pass()
  })
  const first = postEdis(app)
  await until(() => calls.refresh >= 8)
  t.equal((await postEdis(app)).statusCode, 409, 'long after the outage, the claim is still held')
  slow.open()
  t.equal((await first).statusCode, 200)
  t.equal(runs, 1)
  t.ok(lines.some(line => line.msg === 'could not refresh a claim; retrying until it expires' && line.event === EDIS_ID))
  t.notOk(lines.some(line => line.level === 50), 'nothing lost, nothing logged as an error')
})

t.test('an outage that outlasts the claim: the claim is lost, logged at error level, the signal aborted, nothing recorded', async t => {
  const { store, calls, fail, inner } = flaky()
  fail.refreshForever = true
  const { app, lines } = await loggedApp(store, { idempotency: { claimTtl: 300 } })
  t.teardown(() => app.close())
  const aborted = gate()
  let reason: unknown
  app.providerCallbacks.on('traffic-threshold', async (_event, _request, { signal }) => {
    signal.addEventListener('abort', () => {
      reason = signal.reason
      aborted.open()
    })
    await aborted.pass()
  })
  const res = await postEdis(app)
  t.equal(res.statusCode, 503)
  t.same(res.json(), { status: 'error', message: 'The callback\'s processing could not be confirmed; retry later.', code: 'FST_PROVIDER_CALLBACKS_CLAIM_LOST' })
  t.equal(res.headers['retry-after'], '1')
  t.match(reason, { code: 'FST_PROVIDER_CALLBACKS_CLAIM_LOST' }, 'the handler learnt it through its signal')
  t.equal(calls.complete, 0, 'no success recorded for a run nobody can vouch for')
  t.ok(calls.refresh > 2, 'retried until the expiry')
  t.ok(lines.some(line => line.level === 50 && line.event === EDIS_ID && String(line.msg).startsWith('lost the claim on an event')))
  t.equal(inner.claim(EDIS_ID, 'probe', 1000), 'claimed', 'and the event is free for a redelivery (the claim released, still ours)')
})

t.test('a refresh that finds the claim gone or another\'s: lost at once, the signal aborted, nothing recorded', async t => {
  const inner = memoryStore()
  const store: IdempotencyStore = { ...inner, claim: async (k, o, ttl) => inner.claim(k, o, ttl), refresh: async () => false }
  const { app, lines } = await loggedApp(store, { idempotency: { claimTtl: 300 } })
  t.teardown(() => app.close())
  let completed = 0
  const complete = inner.complete
  inner.complete = (...args) => { completed++; return complete(...args) }
  app.providerCallbacks.on('traffic-threshold', async (_event, _request, { signal }) => {
    await new Promise(resolve => signal.addEventListener('abort', resolve))
  })
  const res = await postEdis(app)
  t.equal(res.json().code, 'FST_PROVIDER_CALLBACKS_CLAIM_LOST')
  t.equal(completed, 0)
  t.ok(lines.some(line => line.level === 50 && line.event === EDIS_ID))
})

t.test('a success the store does not take is retried while the claim is refreshed: a redelivery meanwhile finds it in flight, past the claim\'s ttl', async t => {
  const { store, calls, fail } = flaky()
  fail.completeForever = true
  const { app } = await loggedApp(store, { idempotency: { claimTtl: 300 }, handlerTimeout: false })
  t.teardown(() => app.close())
  let runs = 0
  app.providerCallbacks.on('traffic-threshold', async () => { runs++ })
  const first = postEdis(app)
  await until(() => calls.complete >= 1)
  const refreshes = calls.refresh
  // Past two ttls of the claim: without refreshes meanwhile it would have expired.
  await until(() => calls.refresh >= refreshes + 6)
  t.equal((await postEdis(app)).statusCode, 409, 'still held while the success is being recorded')
  fail.completeForever = false
  t.equal((await first).statusCode, 200)
  t.equal((await postEdis(app)).statusCode, 200)
  t.equal(runs, 1)
})

t.test('memoryStore drops claims that expired unseen a generation later, and never a live one', async t => {
  const store = memoryStore({ max: 2 })
  store.claim('stale-1', 'o', 1)
  store.claim('stale-2', 'o', 1)
  const expiredAt = Date.now() + 1
  await until(() => Date.now() > expiredAt)
  t.equal(store.size, 2, 'expired, but not looked at: still kept')
  store.claim('live-1', 'o', 60_000)
  store.claim('live-2', 'o', 60_000)
  t.equal(store.size, 2, 'a generation of newer claims later, the expired ones went')
  store.claim('live-3', 'o', 60_000)
  store.claim('live-4', 'o', 60_000)
  t.equal(store.size, 4, 'live claims are kept past their generation')
  for (let i = 5; i <= 12; i++) store.claim(`live-${i}`, 'o', 60_000)
  t.equal(store.size, 12, 'however many')
  for (const key of ['live-1', 'live-4', 'live-12']) t.equal(store.claim(key, 'another', 60_000), 'in-flight', key)
  t.equal(store.complete('live-1', 'o', 60_000), true, 'the oldest claim is still its owner\'s')
  t.equal(store.claim('live-1', 'another', 60_000), 'done')
})

t.test('a synchronous store\'s refresh keeps a slow handler\'s claim past its ttl', async t => {
  const memory = memoryStore()
  let refreshes = 0
  const store: IdempotencyStore = { ...memory, refresh: (key, owner, ttl) => { refreshes++; return memory.refresh(key, owner, ttl) } }
  const app = await appWithStore(store, { idempotency: { claimTtl: 300 } })
  t.teardown(() => app.close())
  const slow = gate()
  let runs = 0
  app.providerCallbacks.on('traffic-threshold', async () => {
    runs++
    await slow.pass()
  })
  const first = postEdis(app)
  // Four refreshes: more than a ttl since the claim.
  await until(() => refreshes >= 4)
  t.equal((await postEdis(app)).statusCode, 409)
  slow.open()
  t.equal((await first).statusCode, 200)
  t.equal(runs, 1)
})

t.test('a store without refresh: a handler that outlives the claim\'s ttl loses it, and is told', async t => {
  const memory = memoryStore()
  const store: IdempotencyStore = { claim: memory.claim, complete: memory.complete, release: memory.release }
  const { app, lines } = await loggedApp(store, { idempotency: { claimTtl: 150 } })
  t.teardown(() => app.close())
  let reason: unknown
  app.providerCallbacks.on('traffic-threshold', async (_event, _request, { signal }) => {
    await new Promise(resolve => signal.addEventListener('abort', resolve))
    reason = signal.reason
  })
  const res = await postEdis(app)
  t.equal(res.json().code, 'FST_PROVIDER_CALLBACKS_CLAIM_LOST')
  t.match(reason, { code: 'FST_PROVIDER_CALLBACKS_CLAIM_LOST' })
  t.ok(lines.some(line => line.level === 50 && line.event === EDIS_ID && String(line.msg).includes('the store has no refresh')))
})

t.test('a refresh answered, or retried, after its handlers finished changes nothing: the event is done, once', async t => {
  const memory = memoryStore()
  const pending: Array<{ resolve: (extended: boolean) => void, reject: (error: Error) => void }> = []
  const store: IdempotencyStore = {
    ...memory,
    claim: async (key, owner, ttl) => memory.claim(key, owner, ttl),
    refresh: async () => await new Promise<boolean>((resolve, reject) => { pending.push({ resolve, reject }) })
  }
  const app = await appWithStore(store, { idempotency: { claimTtl: 60 } })
  t.teardown(() => app.close())
  for (const [kvm, late] of [['kvm_1', 'failed'], ['kvm_2', 'retry'], ['kvm_3', 'answered']] as const) {
    const finish = gate()
    let runs = 0
    app.providerCallbacks.on('traffic-threshold', async event => {
      if (event.payload.kvm !== kvm) return
      runs++
      await finish.pass()
    })
    pending.length = 0
    const answer = app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `kvm=${kvm}&trigger_value=80` })
    await until(() => pending.length > 0)
    if (late === 'retry') pending[0]!.reject(new Error('store down'))
    finish.open()
    t.equal((await answer).statusCode, 200, late)
    if (late === 'failed') pending[0]!.reject(new Error('store down'))
    if (late === 'answered') pending[0]!.resolve(false)
    await new Promise(resolve => setTimeout(resolve, 5))
    t.equal(memory.claim(`edis:${kvm}:80`, 'probe', 1000), 'done', `${late}: recorded as done, once`)
    t.equal(runs, 1)
  }
})

t.test('once no claim is held, the refresh timer refreshes nothing', async t => {
  const memory = memoryStore()
  let refreshes = 0
  const store: IdempotencyStore = { ...memory, claim: async (k, o, ttl) => memory.claim(k, o, ttl), refresh: (k, o, ttl) => { refreshes++; return memory.refresh(k, o, ttl) } }
  const app = await appWithStore(store, { idempotency: { claimTtl: 300 } })
  t.teardown(() => app.close())
  const clock = fakeClock(t, ['setInterval'])
  const kvm = 'kvm_1'
  const slow = gate()
  app.providerCallbacks.on('traffic-threshold', async event => { if (event.payload.kvm === kvm) await slow.pass() })
  const answer = app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `kvm=${kvm}&trigger_value=80` })
  await slow.reached
  const before = refreshes
  clock.tick(100)
  t.equal(refreshes, before + 1, `${kvm}: refreshed while held`)
  slow.open()
  t.equal((await answer).statusCode, 200)
  const after = refreshes
  clock.tick(100)
  clock.tick(100)
  await nextTurn()
  t.equal(refreshes, after, `${kvm}: nothing refreshed once it was released`)
})
