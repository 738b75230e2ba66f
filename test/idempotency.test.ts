import t from 'tap'
import { memoryStore, type IdempotencyStore } from '../lib/index.js'
import { appWith, EDIS_BODIES, fakeClock, FORM, gate, nextTurn, postBatch, signedItem, VOX } from './helpers.js'

const secret = { apiKey: VOX.apiKey, salt: VOX.salt }
type StoreMode = 'async' | 'sync'
const MODES: StoreMode[] = ['async', 'sync']
const postEdis = (app: Awaited<ReturnType<typeof appWith>>['app'], body = EDIS_BODIES.canonical) =>
  app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: body })

/**
 * A memory store whose every call is counted, and whose method fails for as many more calls as
 * `failing` gives it (Infinity: it is down): async (a promise, rejected on failure) as a networked
 * store, or synchronous (it throws).
 */
function instrumented (inner: IdempotencyStore = memoryStore(), mode: StoreMode = 'async') {
  const calls: string[] = []
  const failing = new Map<string, number>()
  const wrap = <A extends unknown[], R>(name: string, fn: (...args: A) => R | Promise<R>) => {
    const call = (...args: A): R | Promise<R> => {
      calls.push(name)
      const failures = failing.get(name) ?? 0
      if (failures > 0) {
        failing.set(name, failures - 1)
        throw new Error(`store down (${name})`)
      }
      return fn(...args)
    }
    return mode === 'sync' ? call : async (...args: A): Promise<R> => await call(...args)
  }
  const store: IdempotencyStore = {
    claim: wrap('claim', inner.claim),
    refresh: wrap('refresh', inner.refresh!),
    complete: wrap('complete', inner.complete),
    release: wrap('release', inner.release)
  }
  return { store, calls, failing }
}

t.test('on by default: a redelivered callback is acknowledged and its handlers do not run again', async t => {
  const { app } = await appWith({ edis: {}, voximplant: { secret }, idempotency: undefined })
  t.teardown(() => app.close())
  const runs: string[] = []
  app.providerCallbacks.onAny(event => { runs.push(event.id) })
  t.equal((await postEdis(app)).statusCode, 200)
  t.equal((await postEdis(app)).statusCode, 200, 'the duplicate is acknowledged')
  t.equal((await postEdis(app, EDIS_BODIES.percentTwenty)).statusCode, 200)
  const batch = [signedItem('min_balance', 1), signedItem('card_payment', 2)]
  t.equal((await postBatch(app, batch)).statusCode, 200)
  t.equal((await postBatch(app, [...batch, signedItem('card_payment', 3)])).statusCode, 200)
  t.same(runs, [
    'edis:kvm_123456_789012:80', 'edis:kvm_234567_890123:95',
    `voximplant:${VOX.accountId}:1`, `voximplant:${VOX.accountId}:2`, `voximplant:${VOX.accountId}:3`
  ])
})

t.test('a failed handler releases its claim: the redelivery runs it, and only it', async t => {
  const { app } = await appWith({ voximplant: { secret }, idempotency: {} })
  t.teardown(() => app.close())
  const runs: number[] = []
  let failOn2 = true
  app.providerCallbacks.onAny(event => {
    const id = (event.payload as { callback_id: number }).callback_id
    runs.push(id)
    if (id === 2 && failOn2) throw new Error('transient')
  })
  const batch = [1, 2, 3].map(id => signedItem('card_payment', id))
  t.equal((await postBatch(app, batch)).statusCode, 500)
  failOn2 = false
  t.equal((await postBatch(app, batch)).statusCode, 200)
  t.equal((await postBatch(app, batch)).statusCode, 200)
  t.same(runs, [1, 2, 3, 2], 'the retry ran only what failed; the third delivery ran nothing')
})

t.test('a delivery of an event another delivery is running gets a 409 with Retry-After', async t => {
  const { app } = await appWith({ edis: {}, idempotency: { claimTtl: 5000 } })
  t.teardown(() => app.close())
  const running = gate()
  let runs = 0
  app.providerCallbacks.on('traffic-threshold', async () => {
    runs++
    await running.pass()
  })
  const first = postEdis(app)
  await running.reached
  const second = await postEdis(app)
  t.equal(second.statusCode, 409)
  t.equal(second.headers['retry-after'], '5')
  t.same(second.json(), { status: 'error', message: 'The callback is being processed by another delivery; retry later.', code: 'FST_PROVIDER_CALLBACKS_IN_FLIGHT' })
  running.open()
  t.equal((await first).statusCode, 200)
  t.equal((await postEdis(app)).statusCode, 200)
  t.equal(runs, 1)
})

t.test('in a batch, a busy item makes a 409, after the others ran', async t => {
  const { app } = await appWith({ voximplant: { secret }, idempotency: {} })
  t.teardown(() => app.close())
  const running = gate()
  const runs: number[] = []
  app.providerCallbacks.onAny(async event => {
    const id = (event.payload as { callback_id: number }).callback_id
    runs.push(id)
    if (id === 1) await running.pass()
  })
  const slow = postBatch(app, [signedItem('card_payment', 1)])
  await running.reached
  const busy = await postBatch(app, [signedItem('card_payment', 1), signedItem('card_payment', 2)])
  t.equal(busy.statusCode, 409)
  running.open()
  t.equal((await slow).statusCode, 200)
  t.same(runs, [1, 2])
})

t.test('a slow handler keeps its claim: it is refreshed while it runs', async t => {
  const { store, calls } = instrumented()
  const { app } = await appWith({ edis: {}, idempotency: { store, claimTtl: 90 } })
  t.teardown(() => app.close())
  let runs = 0
  const running = gate()
  app.providerCallbacks.on('traffic-threshold', async () => {
    runs++
    await running.pass()
  })
  // The refresh timer and the claim's expiry on one fake clock: ten thirds of the ttl go by.
  const clock = fakeClock(t, ['setInterval', 'Date'])
  const first = postEdis(app)
  await running.reached
  // A turn of the loop after each, for the refresh to be answered before the next is due.
  for (let third = 0; third < 10; third++) {
    clock.tick(30)
    await nextTurn()
  }
  t.equal(calls.filter(c => c === 'refresh').length, 10, 'refreshed every third of the ttl')
  t.equal((await postEdis(app)).statusCode, 409, 'three ttls after the claim, it is still held')
  running.open()
  t.equal((await first).statusCode, 200)
  t.equal(runs, 1)
})

for (const mode of MODES) {
  t.test(`the store unreachable: 503 with Retry-After and no handler run, unless failOpen (${mode} store)`, async t => {
    for (const failOpen of [false, true]) {
      const { store, failing } = instrumented(undefined, mode)
      const { app } = await appWith({ edis: {}, voximplant: { secret }, idempotency: { store, failOpen } })
      t.teardown(() => app.close())
      const runs: string[] = []
      app.providerCallbacks.onAny(event => { runs.push(event.id) })
      failing.set('claim', Infinity)
      const edis = await postEdis(app)
      const vox = await postBatch(app, [signedItem('min_balance', 1), signedItem('min_balance', 2)])
      if (failOpen) {
        t.same([edis.statusCode, vox.statusCode], [200, 200], 'failOpen: run unguarded')
        t.equal(runs.length, 3)
      } else {
        t.same([edis.statusCode, vox.statusCode], [503, 503])
        t.equal(edis.headers['retry-after'], '30')
        t.same(edis.json(), { status: 'error', message: 'Callbacks cannot be processed right now; retry later.', code: 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE' })
        t.equal(runs.length, 0, 'no handler ran')
        failing.clear()
        t.equal((await postBatch(app, [signedItem('min_balance', 1), signedItem('min_balance', 2)])).statusCode, 200, 'once it is back, the redelivery runs')
        t.equal(runs.length, 2)
      }
    }
  })
}

t.test('failOpen still answers 500 when an unguarded handler fails', async t => {
  const { store, failing } = instrumented()
  const { app } = await appWith({ edis: {}, idempotency: { store, failOpen: true }, handlers: { 'traffic-threshold': () => { throw new Error('x') } } })
  t.teardown(() => app.close())
  failing.set('claim', Infinity)
  t.equal((await postEdis(app)).statusCode, 500)
})

for (const mode of MODES) {
  t.test(`a success is recorded even if the store blinks; if it stays down past the claim, 503 CLAIM_LOST (${mode} store)`, async t => {
    const { store, failing, calls } = instrumented(undefined, mode)
    const { app } = await appWith({ edis: {}, idempotency: { store, claimTtl: 400 } })
    t.teardown(() => app.close())
    let runs = 0
    app.providerCallbacks.on('traffic-threshold', () => { runs++ })
    failing.set('complete', 1)
    t.equal((await postEdis(app)).statusCode, 200, 'complete was retried once the store came back')
    t.equal(calls.filter(c => c === 'complete').length, 2)
    t.equal((await postEdis(app)).statusCode, 200)
    t.equal(runs, 1, 'and the redelivery found it done')

    // The store goes away whole: the claim cannot be refreshed either, so it is lost at its expiry.
    failing.set('complete', Infinity)
    failing.set('refresh', Infinity)
    const down = await postEdis(app, EDIS_BODIES.percentTwenty)
    t.equal(down.statusCode, 503, 'no record while the claim lasted: the provider must retry')
    t.equal(down.json().code, 'FST_PROVIDER_CALLBACKS_CLAIM_LOST')
    t.equal(runs, 2)
  })
}

for (const mode of MODES) {
  t.test(`a claim that cannot be released expires by itself (${mode} store)`, async t => {
    const { store, failing } = instrumented(undefined, mode)
    const { app } = await appWith({ edis: {}, idempotency: { store, claimTtl: 100 } })
    t.teardown(() => app.close())
    let fail = true
    let runs = 0
    app.providerCallbacks.on('traffic-threshold', () => {
      runs++
      if (fail) throw new Error('x')
    })
    const clock = fakeClock(t, ['Date'])
    failing.set('release', Infinity)
    t.equal((await postEdis(app)).statusCode, 500)
    failing.clear()
    fail = false
    clock.tick(99)
    t.equal((await postEdis(app)).statusCode, 409, 'the claim is still there until its ttl')
    clock.tick(1)
    t.equal((await postEdis(app)).statusCode, 200, 'expired: the redelivery runs')
    t.equal(runs, 2)
  })
}

t.test('a store without refresh works; its handlers must finish within the claim ttl', async t => {
  const inner = memoryStore()
  const store: IdempotencyStore = { claim: inner.claim, complete: inner.complete, release: inner.release }
  const { app } = await appWith({ edis: {}, idempotency: { store } })
  t.teardown(() => app.close())
  let runs = 0
  app.providerCallbacks.on('traffic-threshold', () => { runs++ })
  await postEdis(app)
  await postEdis(app)
  t.equal(runs, 1)
})

t.test('events nobody listens to touch no store', async t => {
  const { default: Fastify } = await import('fastify')
  const { default: providerCallbacks } = await import('../lib/index.js')
  const { store, calls } = instrumented()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(providerCallbacks, { edis: {}, idempotency: { store } })
  t.equal((await postEdis(app)).statusCode, 200)
  t.same(calls, [])
  app.providerCallbacks.on('traffic-threshold', () => {})
  t.equal((await postEdis(app)).statusCode, 200)
  t.same(calls, ['claim', 'complete'], 'once something listens, the event is guarded')
})

t.test('idempotency: false runs the handlers on every delivery', async t => {
  const { app } = await appWith({ edis: {}, idempotency: false })
  t.teardown(() => app.close())
  let runs = 0
  app.providerCallbacks.on('traffic-threshold', () => { runs++ })
  await postEdis(app)
  await postEdis(app)
  t.equal(runs, 2)
})

t.test('the windows: a done event is forgotten after its provider\'s window', async t => {
  const { app } = await appWith({ edis: {}, voximplant: { secret }, idempotency: { edisWindow: 60, voximplantWindow: 60 } })
  t.teardown(() => app.close())
  const runs: string[] = []
  app.providerCallbacks.onAny(event => { runs.push(event.id) })
  const clock = fakeClock(t, ['Date'])
  await postEdis(app)
  await postBatch(app, [signedItem('min_balance', 1)])
  clock.tick(59)
  await postEdis(app)
  await postBatch(app, [signedItem('min_balance', 1)])
  t.equal(runs.length, 2, 'within the window: once')
  clock.tick(1)
  await postEdis(app)
  await postBatch(app, [signedItem('min_balance', 1)])
  t.equal(runs.length, 4, 'after it: again (EDIS: the same threshold next month)')
})

t.test('memoryStore stays bounded: past max, the oldest done keys go first, and the newest max are all kept', async t => {
  const store = memoryStore({ max: 1000 })
  const claims = new Set<string>()
  let largest = 0
  for (let i = 0; i < 5000; i++) {
    claims.add(store.claim(`k${i}`, 'o', 60_000))
    store.complete(`k${i}`, 'o', 60_000)
    largest = Math.max(largest, store.size)
  }
  t.same([...claims], ['claimed'])
  t.ok(largest <= 2000, `never more than twice max (${largest})`)
  t.ok(store.size >= 1000, `at least max keys (${store.size})`)
  const newest = Array.from({ length: 1000 }, (_, i) => store.claim(`k${4000 + i}`, 'o', 60_000))
  t.same([...new Set(newest)], ['done'], 'every one of the newest 1000 is kept')
  t.equal(store.claim('k0', 'o', 60_000), 'claimed', 'the oldest were forgotten')
})

t.test('memoryStore: a claim of the old generation is its owner\'s to refresh, complete or release; a clock set back does not revive one over a newer claim', async t => {
  const clock = fakeClock(t, ['Date'])
  const store = memoryStore({ max: 2 })
  store.claim('a', 'one', 10_000)
  store.claim('b', 'one', 10_000)
  // Both are in the old generation now; 'c' in the young one.
  store.claim('c', 'one', 10_000)
  t.equal(store.refresh('a', 'one', 10_000), true, 'refreshed in the old generation')
  t.equal(store.refresh('a', 'two', 10_000), false, 'not by another owner')
  store.release('a', 'two')
  t.equal(store.claim('a', 'two', 10_000), 'in-flight', 'nor released by one')
  store.release('a', 'one')
  t.equal(store.claim('a', 'two', 10_000), 'claimed', 'released by its owner, from the old generation')
  store.release('a', 'two')
  t.equal(store.complete('b', 'one', 10_000), true, 'completed in the old generation')
  t.equal(store.claim('b', 'two', 10_000), 'done')

  const back = Date.now()
  const fresh = memoryStore({ max: 2 })
  fresh.claim('k', 'first', 100)
  fresh.claim('x', 'first', 60_000)
  clock.tick(200)
  t.equal(fresh.claim('k', 'second', 60_000), 'claimed', 'the first claim expired')
  clock.setTime(back)
  // Two generations on, the one holding the first claim is dropped, with the clock showing it live.
  for (const key of ['y', 'z', 'w']) fresh.claim(key, 'second', 60_000)
  t.equal(fresh.claim('k', 'third', 60_000), 'in-flight')
  t.equal(fresh.complete('k', 'first', 60_000), false, 'the expired claim did not come back')
  t.equal(fresh.complete('k', 'second', 60_000), true, 'the newer claim is the one kept')
})

t.test('memoryStore: claims expire, owners are respected, ttl caps what is kept', async t => {
  const clock = fakeClock(t, ['Date'])
  const store = memoryStore({ ttl: 50 })
  t.equal(await store.claim('a', 'one', 10_000), 'claimed')
  t.equal(await store.claim('a', 'two', 10_000), 'in-flight')
  await store.release('a', 'two')
  t.equal(await store.claim('a', 'two', 10_000), 'in-flight', 'another owner cannot release it')
  await store.refresh!('a', 'two', 10_000)
  clock.tick(50)
  t.equal(await store.claim('a', 'two', 10_000), 'claimed', 'expired at the cap, and another owner\'s refresh did not extend it')
  await store.refresh!('b', 'one', 10_000)
  t.equal(store.size, 1, 'refreshing an unknown key creates nothing')
  t.throws(() => memoryStore({ max: 0 }), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /max must be a positive integer/ })
  t.throws(() => memoryStore({ ttl: -1 }), { message: /ttl must be a positive number of ms/ })
})

t.test('memoryStore: thousands of keys, half released among the others: each key answers for itself, the released ones can be claimed again', async t => {
  const store = memoryStore({ max: 100_000 })
  const keys = Array.from({ length: 5000 }, (_, i) => `voximplant:1234567:${1_000_000 + i}`)
  t.same(keys.map(key => store.claim(key, `owner-${key}`, 60_000)), keys.map(() => 'claimed'))
  t.equal(store.size, keys.length)
  // Released keys sit among the kept ones in the table: looking a kept key up goes past them.
  const completed = keys.map((key, i) => {
    if (i % 2 === 0) return store.complete(key, `owner-${key}`, 60_000)
    store.release(key, `owner-${key}`)
    return undefined
  })
  t.same(completed, keys.map((_, i) => i % 2 === 0 ? true : undefined))
  t.equal(store.size, keys.length / 2, 'the released keys are gone')
  const answers = keys.map(key => store.claim(key, 'again', 60_000))
  t.same(answers, keys.map((_, i) => i % 2 === 0 ? 'done' : 'claimed'), 'done keys stay done; released ones are claimed anew')
  t.equal(store.claim('voximplant:1234567:999', 'x', 60_000), 'claimed', 'a key never seen')
  t.equal(store.complete(keys[1]!, `owner-${keys[1]!}`, 60_000), false, 'a released claim\'s first owner cannot complete the new one')
  t.ok(store.complete(keys[1]!, 'again', 60_000))
})

t.test('bad idempotency options fail at registration', async t => {
  const { default: Fastify } = await import('fastify')
  const { default: providerCallbacks } = await import('../lib/index.js')
  for (const [idempotency, message] of [
    [{ store: { claim: () => {} } }, /idempotency.store must have claim, complete and release methods/],
    [{ store: 'redis' }, /idempotency.store must have claim, complete and release methods/],
    [{ claimTtl: 0 }, /idempotency.claimTtl must be a positive integer/],
    [{ edisWindow: -5 }, /idempotency.edisWindow must be a positive integer/],
    ['yes', /idempotency must be an object or false/]
  ] as const) {
    const app = Fastify()
    app.register(providerCallbacks, { edis: {}, idempotency: idempotency as never })
    await t.rejects(async () => { await app.ready() }, { message }, String(message))
    await app.close()
  }
})
