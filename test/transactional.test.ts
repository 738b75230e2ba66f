// Exactly-once effects through the plugin, against the real PostgreSQL: with
// `idempotency: { store: postgresStore(pool), transactional: true }` a handler's writes through
// `context.tx` and the event's done mark commit together, a failure rolls both back and frees the
// event for its redelivery, and a run whose claim another run took can never commit.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import pg from 'pg'
import t, { type Test } from 'tap'
import providerCallbacks, { memoryStore, postgresStore, type HandlerContext, type IdempotencyOptions } from '../lib/index.js'
import { FORM, gate, postBatch, signedItem, VOX } from './helpers.js'
import { postgresAvailable, testSchema } from './pg-helpers.js'

t.setTimeout(120_000)

const secret = { apiKey: VOX.apiKey, salt: VOX.salt }

// Typed only where the app declares it (ProviderCallbacksTypes; test/types/transaction-app): this
// program's other tests see no `tx`.
const txOf = (context: HandlerContext): pg.PoolClient => (context as unknown as { tx: pg.PoolClient }).tx

async function transactionalApp (t: Test, pool: pg.Pool, handler: (id: string, tx: pg.PoolClient, context: HandlerContext) => Promise<void>, idempotency: IdempotencyOptions = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(providerCallbacks, {
    edis: {},
    voximplant: { secret },
    idempotency: { store: postgresStore(pool), transactional: true, ...idempotency }
  })
  app.providerCallbacks.onAny(async (event, _request, context) => { await handler(event.id, txOf(context), context) })
  t.teardown(async () => { await app.close() })
  return app
}

const edis = (app: FastifyInstance, kvm = 'kvm-1', trigger = '100'): Promise<LightMyRequestResponse> =>
  app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `kvm=${kvm}&details=d&trigger_value=${trigger}` })

async function effectsTable (pool: pg.Pool): Promise<() => Promise<string[]>> {
  await pool.query('CREATE TABLE effects (event text NOT NULL)')
  return async () => (await pool.query('SELECT event FROM effects ORDER BY event')).rows.map(row => row.event as string)
}

const write = async (tx: pg.PoolClient, id: string): Promise<void> => { await tx.query('INSERT INTO effects (event) VALUES ($1)', [id]) }

t.test('a handler\'s write and the done mark commit together; the redelivery runs nothing', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const effects = await effectsTable(pool)
  let runs = 0
  const app = await transactionalApp(t, pool, async (id, tx) => {
    runs++
    await write(tx, id)
  })
  t.equal((await edis(app)).statusCode, 200)
  t.same(await effects(), ['edis:kvm-1:100'])
  const { rows } = await pool.query('SELECT done, owner FROM provider_callbacks_events WHERE key = $1', ['edis:kvm-1:100'])
  t.same(rows, [{ done: true, owner: null }])
  t.equal((await edis(app)).statusCode, 200, 'a duplicate')
  t.equal(runs, 1)
  t.same(await effects(), ['edis:kvm-1:100'])
  t.equal(pool.totalCount, pool.idleCount, 'the transaction\'s client is back in the pool')
})

// Two ways a first run fails after its write: a throw, and a statement that failed (which aborts
// the transaction even when the handler caught it).
const firstRunFails: Record<string, (tx: pg.PoolClient) => Promise<void>> = {
  'throws after its write': async () => { throw new Error('after the write') },
  'swallowed a failed statement': async tx => { await tx.query('SELECT * FROM no_such_table').catch(() => {}) }
}
for (const [how, fail] of Object.entries(firstRunFails)) {
  t.test(`a handler that ${how}: rolled back, the claim freed, the redelivery commits once`, async t => {
    if (!await postgresAvailable(t)) return
    const { pool } = await testSchema(t)
    const effects = await effectsTable(pool)
    let runs = 0
    const app = await transactionalApp(t, pool, async (id, tx) => {
      await write(tx, id)
      if (++runs === 1) await fail(tx)
    })
    t.equal((await edis(app)).statusCode, 500)
    t.same(await effects(), [], 'its write was rolled back')
    t.equal((await edis(app)).statusCode, 200, 'the claim was released: the redelivery runs it at once')
    t.same(await effects(), ['edis:kvm-1:100'])
    t.equal(runs, 2)
  })
}

t.test('a run whose claim another run took (it lapsed meanwhile) is refused at commit, its write rolled back', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const effects = await effectsTable(pool)
  const first = gate()
  let runs = 0
  // A claim far longer than the test, so that no refresh finds it lost first: the commit alone refuses.
  const app = await transactionalApp(t, pool, async (id, tx) => {
    await write(tx, `${id} run ${++runs}`)
    if (runs === 1) await first.pass()
  }, { claimTtl: 600_000 })
  const late = edis(app)
  await first.reached
  // Another replica took it over: as if this run's claim had lapsed while its process was frozen.
  await pool.query('UPDATE provider_callbacks_events SET owner = $1 WHERE key = $2', ['another replica', 'edis:kvm-1:100'])
  first.open()
  const res = await late
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_PROVIDER_CALLBACKS_CLAIM_LOST')
  t.same(await effects(), [], 'nothing of the refused run remains')
  const { rows } = await pool.query('SELECT owner, done FROM provider_callbacks_events')
  t.same(rows, [{ owner: 'another replica', done: false }], 'the other run\'s claim is left as it was')
})

t.test('a claim lost while the handler runs (its refresh refused): rolled back without a commit', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const effects = await effectsTable(pool)
  const running = gate()
  let signal: AbortSignal | undefined
  const app = await transactionalApp(t, pool, async (id, tx, context) => {
    signal = context.signal
    await write(tx, id)
    await running.pass()
  }, { claimTtl: 300 })
  const late = edis(app)
  await running.reached
  await pool.query('UPDATE provider_callbacks_events SET owner = $1', ['another replica'])
  // The next refresh (every 100 ms) is refused, and the run's signal aborted.
  while (signal?.aborted !== true) await sleep(20)
  running.open()
  t.equal((await late).statusCode, 503)
  t.same(await effects(), [])
})

t.test('a Voximplant batch: each item commits on its own, a failing one rolls back only its own', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const effects = await effectsTable(pool)
  const app = await transactionalApp(t, pool, async (id, tx) => {
    await write(tx, id)
    if (id.endsWith(':2')) throw new Error('item 2 fails')
  })
  const batch = [1, 2, 3].map(id => signedItem('min_balance', id))
  t.equal((await postBatch(app, batch)).statusCode, 500)
  t.same(await effects(), ['voximplant:1234567:1', 'voximplant:1234567:3'])
  t.equal((await postBatch(app, batch)).statusCode, 500, 'item 2 fails again; 1 and 3 are duplicates')
  t.same(await effects(), ['voximplant:1234567:1', 'voximplant:1234567:3'])
})

t.test('a database out of reach when the transaction opens: 503, no handler runs', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const store = postgresStore(pool)
  const down = new pg.Pool({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 500 })
  t.teardown(async () => { await down.end() })
  // Claims reach the database; the transactions' pool does not.
  const split = Object.assign(Object.create(store) as typeof store, { begin: postgresStore(down).begin })
  let runs = 0
  const app = Fastify()
  await app.register(providerCallbacks, { edis: {}, idempotency: { store: split, transactional: true } })
  app.providerCallbacks.on('traffic-threshold', () => { runs++ })
  t.teardown(async () => { await app.close() })
  const res = await edis(app)
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE')
  t.equal(runs, 0)
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM provider_callbacks_events')
  t.same(rows, [{ n: 0 }], 'the claim was released: the redelivery runs it at once')
})

t.test('without transactional, a handler gets no tx', async t => {
  const app = Fastify()
  let context: HandlerContext | undefined
  await app.register(providerCallbacks, { edis: {} })
  app.providerCallbacks.on('traffic-threshold', (_event, _request, c) => { context = c })
  t.teardown(async () => { await app.close() })
  t.equal((await edis(app)).statusCode, 200)
  t.equal((context as { tx?: unknown }).tx, undefined)
})

t.test('options: transactional needs a store that opens transactions, and no failOpen', async t => {
  const pool = new pg.Pool()
  t.teardown(async () => { await pool.end() })
  const register = async (idempotency: IdempotencyOptions): Promise<void> => {
    const app = Fastify()
    try {
      await app.register(providerCallbacks, { edis: {}, idempotency })
    } finally {
      await app.close().catch(() => {})
    }
  }
  await t.rejects(register({ transactional: true }), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /needs a store that opens transactions/ })
  await t.rejects(register({ store: memoryStore(), transactional: true }), /needs a store that opens transactions/)
  await t.rejects(register({ store: postgresStore(pool), transactional: true, failOpen: true }), /cannot be used together/)
  await t.rejects(register({ store: postgresStore(pool), transactional: 'yes' as never }), /transactional must be true or false, got 'yes'/)
})
