// A Voximplant batch through stores of the host's own: with batch methods (claimMany, refreshMany)
// and without them (claim and refresh for each key, all sent at once). The order and semantics of
// docs/guarantee.md's "The claim protocol" hold either way.
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import providerCallbacks, { memoryStore, redisStore, type IdempotencyStore, type KeyOwner, type ProviderCallbacksOptions } from '../lib/index.js'
import { fakeClock, gate, nextTurn, postBatch, signedItem, VOX } from './helpers.js'

const secret = { apiKey: VOX.apiKey, salt: VOX.salt }
const idOf = (callbackId: number): string => `voximplant:${VOX.accountId}:${callbackId}`
const items = (...ids: number[]) => ids.map(id => signedItem('min_balance', id))

async function appWithStore (store: IdempotencyStore, idempotency: Partial<NonNullable<ProviderCallbacksOptions['idempotency']>> = {}, options: Partial<ProviderCallbacksOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(providerCallbacks, { voximplant: { secret }, handlerTimeout: false, ...options, idempotency: { store, ...idempotency } })
  await app.ready()
  return app
}

/** An async store of the host's own, per key only, logging every call in order, with a gate on complete. */
function perKeyStore (inner = memoryStore()) {
  const log: string[] = []
  const completes = gate()
  const store: IdempotencyStore = {
    claim: async (key, owner, ttl) => { log.push(`claim ${key}`); await null; return inner.claim(key, owner, ttl) },
    refresh: async (key, owner, ttl) => { log.push(`refresh ${key}`); return inner.refresh(key, owner, ttl) },
    complete: async (key, owner, ttl) => { log.push(`complete ${key}`); await completes.pass(); inner.complete(key, owner, ttl) },
    release: async (key, owner) => { log.push(`release ${key}`); inner.release(key, owner) }
  }
  return { store, log, completes, inner }
}

t.test('a store without batch methods: every claim is sent before any is answered; items run in order; each record is sent as its item settles; the answer waits for all', async t => {
  const { store, log, completes } = perKeyStore()
  const app = await appWithStore(store)
  t.teardown(() => app.close())
  app.providerCallbacks.onAny(async event => { log.push(`run ${event.id}`) })
  let answered = false
  const answer = postBatch(app, items(1, 2, 3)).then(res => { answered = true; return res })
  await completes.reached
  // The first record waits for the store; the next items ran meanwhile, and sent theirs.
  while (log.filter(line => line.startsWith('complete')).length < 3) await nextTurn()
  t.same(log, [
    ...[1, 2, 3].map(id => `claim ${idOf(id)}`),
    `run ${idOf(1)}`, `complete ${idOf(1)}`, `run ${idOf(2)}`, `complete ${idOf(2)}`, `run ${idOf(3)}`, `complete ${idOf(3)}`
  ])
  await nextTurn()
  t.equal(answered, false, 'no answer while the store has not acknowledged the records')
  completes.open()
  t.equal((await answer).statusCode, 200)
  log.length = 0
  t.equal((await postBatch(app, items(1, 2, 3, 4))).statusCode, 200)
  t.same(log.filter(line => line.startsWith('run')), [`run ${idOf(4)}`], 'redelivered with one more: only the new one runs')
})

t.test('a store with claimMany and refreshMany: one call per batch, and one per refresh tick for every held claim', async t => {
  const inner = memoryStore()
  const calls: string[] = []
  const store: IdempotencyStore = {
    ...inner,
    claim: (key, owner, ttl) => { calls.push('claim'); return inner.claim(key, owner, ttl) },
    refresh: () => { throw new Error('refreshMany is there: refresh is not called') },
    claimMany: (claims: readonly KeyOwner[], ttl: number) => {
      calls.push(`claimMany ${claims.map(c => c.key).join(',')}`)
      return claims.map(({ key, owner }) => inner.claim(key, owner, ttl))
    },
    refreshMany: async (claims: readonly KeyOwner[], ttl: number) => {
      calls.push(`refreshMany ${claims.length}`)
      return claims.map(({ key, owner }) => inner.refresh(key, owner, ttl))
    }
  }
  const app = await appWithStore(store, { claimTtl: 300 })
  t.teardown(() => app.close())
  const slow = gate()
  app.providerCallbacks.onAny(async event => { if (event.id === idOf(1)) await slow.pass() })
  const clock = fakeClock(t, ['setInterval', 'Date'])
  const answer = postBatch(app, items(1, 2, 3, 4, 5))
  await slow.reached
  for (let third = 0; third < 6; third++) {
    clock.tick(100)
    await nextTurn()
  }
  t.same(calls, [`claimMany ${[1, 2, 3, 4, 5].map(idOf).join(',')}`, ...Array(6).fill('refreshMany 5')], 'the batch claimed in one call; every tick refreshes the five held claims in one')
  t.equal((await postBatch(app, items(5))).statusCode, 409, 'two ttls later, the last item (waiting its turn) is still held')
  slow.open()
  t.equal((await answer).statusCode, 200)
  t.equal(inner.claim(idOf(5), 'probe', 1000), 'done')
})

for (const how of ['throws', 'rejects'] as const) {
  t.test(`claimMany ${how}: a 503, no handler runs, and every key is given back, so the redelivery runs them once`, async t => {
    const inner = memoryStore()
    const released: string[] = []
    let down = true
    const store: IdempotencyStore = {
      ...inner,
      release: (key, owner) => { released.push(key); inner.release(key, owner) },
      claimMany: (claims: readonly KeyOwner[], ttl: number) => {
        // As a store whose answer was lost: the keys were taken, and the caller cannot know it.
        const taken = claims.map(({ key, owner }) => inner.claim(key, owner, ttl))
        if (!down) return taken
        if (how === 'throws') throw new Error('store down')
        return Promise.reject(new Error('store down'))
      }
    }
    for (const failOpen of [true, false]) {
      const app = await appWithStore(store, { failOpen })
      t.teardown(() => app.close())
      const runs: string[] = []
      app.providerCallbacks.onAny(event => { runs.push(event.id) })
      released.length = 0
      const ids = failOpen ? [11, 12] : [1, 2, 3]
      const res = await postBatch(app, items(...ids))
      t.same(released, ids.map(idOf), 'every key given back')
      if (failOpen) {
        t.equal(res.statusCode, 200, 'failOpen: run unguarded')
        t.same(runs, ids.map(idOf))
        continue
      }
      t.equal(res.statusCode, 503)
      t.equal(res.json().code, 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE')
      t.same(runs, [])
      down = false
      t.equal((await postBatch(app, items(...ids))).statusCode, 200)
      t.same(runs, ids.map(idOf), 'the redelivery ran each once')
    }
  })
}

t.test('claim by claim, a claim that fails stops the batch there: the items before it ran, the items after it are given back, and the redelivery runs the rest once', async t => {
  const inner = memoryStore()
  let failing: string | undefined = idOf(3)
  const released: string[] = []
  const store: IdempotencyStore = {
    claim: async (key, owner, ttl) => {
      if (key === failing) throw new Error('store down')
      return inner.claim(key, owner, ttl)
    },
    refresh: inner.refresh,
    complete: inner.complete,
    release: (key, owner) => { released.push(key); inner.release(key, owner) }
  }
  const app = await appWithStore(store)
  t.teardown(() => app.close())
  const runs: number[] = []
  // Handlers that take a turn: the claims after them are held while they run, and given back after.
  app.providerCallbacks.onAny(async event => {
    await nextTurn()
    runs.push((event.payload as { callback_id: number }).callback_id)
  })
  const res = await postBatch(app, items(1, 2, 3, 4, 5))
  t.equal(res.statusCode, 503)
  t.same(runs, [1, 2])
  t.same(released, [idOf(4), idOf(5)])
  failing = undefined
  t.equal((await postBatch(app, items(1, 2, 3, 4, 5))).statusCode, 200)
  t.same(runs, [1, 2, 3, 4, 5], 'each ran once')
})

t.test('failOpen, claim by claim: an item whose claim failed runs unguarded, in its turn, and the batch goes on', async t => {
  const inner = memoryStore()
  const store: IdempotencyStore = {
    ...inner,
    claim: (key, owner, ttl) => {
      if (key === idOf(2)) throw new Error('store down')
      return inner.claim(key, owner, ttl)
    }
  }
  const app = await appWithStore(store, { failOpen: true })
  t.teardown(() => app.close())
  const runs: number[] = []
  app.providerCallbacks.onAny(async event => {
    await nextTurn()
    runs.push((event.payload as { callback_id: number }).callback_id)
  })
  t.equal((await postBatch(app, items(1, 2, 3))).statusCode, 200)
  t.same(runs, [1, 2, 3])
  t.equal((await postBatch(app, items(1, 2, 3))).statusCode, 200)
  t.same(runs, [1, 2, 3, 2], 'only the unguarded item ran again')
})

t.test('a claim lost while its item waits its turn: the item never runs, the answer is 503 CLAIM_LOST, and the redelivery runs it once', async t => {
  const inner = memoryStore()
  const store: IdempotencyStore = {
    ...inner,
    claim: async (key, owner, ttl) => inner.claim(key, owner, ttl),
    // The store forgot item 2's claim (it expired there, say): its refresh says so.
    refresh: (key, owner, ttl) => key === idOf(2) ? false : inner.refresh(key, owner, ttl)
  }
  const app = await appWithStore(store, { claimTtl: 300 })
  t.teardown(() => app.close())
  const slow = gate()
  const runs: number[] = []
  app.providerCallbacks.onAny(async event => {
    const id = (event.payload as { callback_id: number }).callback_id
    runs.push(id)
    if (id === 1 && runs.length === 1) await slow.pass()
  })
  const clock = fakeClock(t, ['setInterval', 'Date'])
  const answer = postBatch(app, items(1, 2, 3))
  await slow.reached
  clock.tick(100)
  await nextTurn()
  slow.open()
  const res = await answer
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_PROVIDER_CALLBACKS_CLAIM_LOST')
  t.same(runs, [1, 3], 'item 2 did not run on a claim nobody could vouch for')
  t.equal((await postBatch(app, items(1, 2, 3))).statusCode, 200)
  t.same(runs, [1, 3, 2], 'the redelivery ran it, and only it')
})

t.test('a handler removed while a batch\'s claims are on their way: nothing runs, every claim is given back', async t => {
  const inner = memoryStore()
  const claimsMayAnswer = gate()
  const store: IdempotencyStore = { ...inner, claim: async (key, owner, ttl) => { await claimsMayAnswer.pass(); return inner.claim(key, owner, ttl) } }
  const app = await appWithStore(store)
  t.teardown(() => app.close())
  const handler = (): void => { t.fail('no handler runs') }
  app.providerCallbacks.on('min-balance', handler)
  const answer = postBatch(app, items(1, 2))
  await claimsMayAnswer.reached
  app.providerCallbacks.off('min-balance', handler)
  claimsMayAnswer.open()
  t.equal((await answer).statusCode, 200)
  t.equal(inner.claim(idOf(1), 'probe', 1000), 'claimed', 'released, not done')
  t.equal(inner.claim(idOf(2), 'probe', 1000), 'claimed')
  t.equal((await postBatch(app, items(3, 4))).statusCode, 200, 'nobody listens: acknowledged')
  t.equal(inner.claim(idOf(3), 'probe', 1000), 'claimed', 'and nothing claimed')
})

t.test('a handler removed while its item waits its turn: the item does not run, and its claim is given back', async t => {
  const inner = memoryStore()
  const app = await appWithStore(inner)
  t.teardown(() => app.close())
  const slow = gate()
  const runs: string[] = []
  const payments = (event: { id: string }): void => { runs.push(event.id) }
  app.providerCallbacks.on('min-balance', async event => {
    runs.push(event.id)
    await slow.pass()
  })
  app.providerCallbacks.on('card-payment', payments)
  const answer = postBatch(app, [signedItem('min_balance', 1), signedItem('card_payment', 2)])
  await slow.reached
  app.providerCallbacks.off('card-payment', payments)
  slow.open()
  t.equal((await answer).statusCode, 200)
  t.same(runs, [idOf(1)])
  t.equal(inner.claim(idOf(2), 'probe', 1000), 'claimed', 'released, not done')
})

t.test('closing mid-batch past the grace period: the running item\'s signal is aborted, the items waiting their turn do not run, and their claims are given up', async t => {
  const { store, inner } = perKeyStore()
  const completesAtOnce: IdempotencyStore = { ...store, complete: inner.complete }
  const app = await appWithStore(completesAtOnce, {}, { closeGracePeriod: 50 })
  const runs: number[] = []
  let aborted: unknown
  app.providerCallbacks.onAny(async (event, _request, { signal }) => {
    runs.push((event.payload as { callback_id: number }).callback_id)
    await new Promise(resolve => signal.addEventListener('abort', () => { aborted = signal.reason; resolve(undefined) }))
  })
  const answer = postBatch(app, items(1, 2, 3))
  while (runs.length === 0) await nextTurn()
  await app.close()
  t.match(aborted, { code: 'FST_PROVIDER_CALLBACKS_CLOSING' })
  t.same(runs, [1], 'the items after it never started')
  t.ok([503].includes((await answer).statusCode))
  for (const id of [2, 3]) t.equal(inner.claim(idOf(id), 'probe', 1000), 'claimed', `item ${id}'s claim given up`)
})

t.test('redisStore over a client whose eval throws at once: a 503, as for a Redis that cannot be reached', async t => {
  const client = { isCluster: false, eval: () => { throw new Error('connection is closed') } }
  const app = await appWithStore(redisStore(client))
  t.teardown(() => app.close())
  app.providerCallbacks.onAny(() => { t.fail('no handler runs') })
  t.equal((await postBatch(app, items(1, 2))).statusCode, 503)
  t.equal((await postBatch(app, items(1))).statusCode, 503)
})

t.test('with telemetry off (nothing wraps an item), a batch keeps its order and semantics: duplicates skipped, a failed item released, the rest run', async t => {
  const { store, log, completes } = perKeyStore()
  completes.open()
  const app = await appWithStore(store, {}, { telemetry: false })
  t.teardown(() => app.close())
  let failing = true
  app.providerCallbacks.onAny(async event => {
    log.push(`run ${event.id}`)
    if (failing && event.id === idOf(12)) throw new Error('not yet')
  })
  t.equal((await postBatch(app, items(11))).statusCode, 200)
  log.length = 0
  t.equal((await postBatch(app, items(11, 12, 13))).statusCode, 500, 'an item failed: the provider redelivers')
  t.same(log.filter(line => line.startsWith('run')), [`run ${idOf(12)}`, `run ${idOf(13)}`], 'the done item skipped, the failed one did not stop the next')
  failing = false
  log.length = 0
  t.equal((await postBatch(app, items(11, 12, 13))).statusCode, 200)
  t.same(log.filter(line => line.startsWith('run')), [`run ${idOf(12)}`], 'the redelivery runs only what failed')
})
