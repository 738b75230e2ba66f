// Exactly-once effects when processes die, freeze, race and lose their database, against the real
// PostgreSQL: a replica killed between its handler's write and the commit (its write rolled back,
// the event then committed once elsewhere); a replica frozen (SIGSTOP) past its claim, which
// another then ran (its commit refused on resuming, one effect); two replicas under concurrent
// duplicates and failing handlers (every effect exactly once); PostgreSQL restarted mid-run (503s
// meanwhile, and nothing lost once it is back).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import pg from 'pg'
import t, { type Test } from 'tap'
import providerCallbacks, { postgresStore, type HandlerContext, type IdempotencyOptions } from '../lib/index.js'
import { FORM, TYPESCRIPT_NODE_ARGS } from './helpers.js'
import { ownPostgres, PG_URL, postgresAvailable, testSchema } from './pg-helpers.js'
import { seededRandom } from './redis-helpers.js'

// Child processes and a server of the test's own: seconds on a quiet machine, and room for a busy one.
t.setTimeout(240_000)
const SEED = Number(process.env.SEED ?? Date.now() % 1_000_000)

const txOf = (context: HandlerContext): pg.PoolClient => (context as unknown as { tx: pg.PoolClient }).tx

interface Effect { event: string, pid: number }

async function effectsTable (pool: pg.Pool): Promise<() => Promise<Effect[]>> {
  await pool.query('CREATE TABLE effects (event text NOT NULL, pid integer NOT NULL)')
  return async () => (await pool.query('SELECT event, pid FROM effects ORDER BY event')).rows
}

/** A replica in this process: the plugin on a pool of its own, transactional, its handler writing the event's effect. */
async function replica (t: Test, pool: pg.Pool, idempotency: IdempotencyOptions, handler?: (id: string) => Promise<void>): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(providerCallbacks, { edis: {}, idempotency: { store: postgresStore(pool), transactional: true, ...idempotency } })
  app.providerCallbacks.onAny(async (event, _request, context) => {
    await txOf(context).query('INSERT INTO effects (event, pid) VALUES ($1, $2)', [event.id, process.pid])
    await handler?.(event.id)
  })
  t.teardown(async () => { await app.close() })
  return app
}

const edisPayload = (kvm: string): string => `kvm=${kvm}&details=d&trigger_value=100`
const deliver = (app: FastifyInstance, kvm: string): Promise<LightMyRequestResponse> =>
  app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: edisPayload(kvm) })

/** The fixture replica (test/fixtures/pg-replica.ts), on `schema`; its port and its stdout's lines. */
async function replicaProcess (t: Test, schema: string, env: Record<string, string>): Promise<{ child: ChildProcess, port: number, lines: AsyncIterator<string> }> {
  const child = spawn(process.execPath, [...TYPESCRIPT_NODE_ARGS, 'test/fixtures/pg-replica.ts'], {
    env: { ...process.env, PG_URL, SCHEMA: schema, ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill('SIGCONT'); child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const port = Number((await lines.next()).value.split(' ')[1])
  return { child, port, lines }
}

const post = async (port: number, kvm: string): Promise<number> =>
  (await fetch(`http://127.0.0.1:${port}/callbacks/edis`, { method: 'POST', headers: { 'content-type': FORM }, body: edisPayload(kvm) })).status

/** Until the event's claim has expired in the database (by its clock). */
async function claimExpired (pool: pg.Pool, key: string): Promise<void> {
  for (;;) {
    const { rows } = await pool.query('SELECT expires_at <= clock_timestamp() AS expired FROM provider_callbacks_events WHERE key = $1', [key])
    if (rows[0]?.expired === true) return
    await sleep(50)
  }
}

t.test('a replica SIGKILLed between its handler\'s write and the commit: the write rolled back, the event committed once by another', async t => {
  if (!await postgresAvailable(t)) return
  const { pool, schema } = await testSchema(t)
  const effects = await effectsTable(pool)
  const claimTtl = 1000
  const { child, port, lines } = await replicaProcess(t, schema, { CLAIM_TTL: String(claimTtl) })
  post(port, 'killed').catch(() => {})
  t.equal((await lines.next()).value, 'written edis:killed:100')
  child.kill('SIGKILL')
  await once(child, 'exit')

  const survivor = await replica(t, pool, { claimTtl })
  let status = (await deliver(survivor, 'killed')).statusCode
  t.equal(status, 409, 'its claim is live until it expires: the survivor does not run it yet')
  await claimExpired(pool, 'edis:killed:100')
  status = (await deliver(survivor, 'killed')).statusCode
  t.equal(status, 200)
  t.same(await effects(), [{ event: 'edis:killed:100', pid: process.pid }], 'one effect, the survivor\'s: the killed run\'s write never committed')
  t.equal((await deliver(survivor, 'killed')).statusCode, 200)
  t.equal((await effects()).length, 1, 'and no second one')
})

t.test('a replica frozen (SIGSTOP) past its claim, run meanwhile by another: on resuming its commit is refused; one effect', async t => {
  if (!await postgresAvailable(t)) return
  const { pool, schema } = await testSchema(t)
  const effects = await effectsTable(pool)
  const claimTtl = 1000
  const { child, port, lines } = await replicaProcess(t, schema, { CLAIM_TTL: String(claimTtl), HOLD: '500' })
  const frozen = post(port, 'frozen')
  t.equal((await lines.next()).value, 'written edis:frozen:100')
  child.kill('SIGSTOP')
  await claimExpired(pool, 'edis:frozen:100')

  const survivor = await replica(t, pool, { claimTtl })
  t.equal((await deliver(survivor, 'frozen')).statusCode, 200, 'the lapsed claim is taken over and run')
  t.same(await effects(), [{ event: 'edis:frozen:100', pid: process.pid }])
  child.kill('SIGCONT')
  t.equal(await frozen, 503, 'the resumed run cannot vouch for its commit')
  t.same(await effects(), [{ event: 'edis:frozen:100', pid: process.pid }], 'its write was rolled back: still one effect, the survivor\'s')
  const { rows } = await pool.query('SELECT done FROM provider_callbacks_events WHERE key = $1', ['edis:frozen:100'])
  t.same(rows, [{ done: true }])
})

t.test('two replicas, concurrent duplicates and failing handlers: every event\'s effect exactly once', async t => {
  if (!await postgresAvailable(t)) return
  t.comment(`seed ${SEED} (SEED=${SEED} repeats this run)`)
  const random = seededRandom(SEED)
  const { pool: first } = await testSchema(t)
  const effects = await effectsTable(first)
  const { rows: [{ path }] } = await first.query('SHOW search_path')
  const second = new pg.Pool({ connectionString: PG_URL, options: `-c search_path=${path as string}` })
  t.teardown(async () => { await second.end() })
  const flaky = async (): Promise<void> => {
    await sleep(random() * 10)
    if (random() < 0.3) throw new Error('flaky handler')
  }
  const replicas = [await replica(t, first, { claimTtl: 2000 }, flaky), await replica(t, second, { claimTtl: 2000 }, flaky)]
  const events = Array.from({ length: 60 }, (_, i) => `kvm-${i}`)
  const statuses = new Map<number, number>()
  // Each event three times at once, to random replicas, each copy retried as a provider would until it is accepted.
  await Promise.all(events.flatMap(kvm => [0, 1, 2].map(async () => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const status = (await deliver(replicas[Math.floor(random() * 2)]!, kvm)).statusCode
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      if (status === 200) return
      if (![409, 500, 503].includes(status)) throw new Error(`unexpected ${status}`)
      await sleep(random() * 30)
    }
    throw new Error(`${kvm} not accepted`)
  })))
  t.comment(`answers: ${[...statuses].map(([status, n]) => `${status}×${n}`).join(' ')}`)
  t.ok((statuses.get(500) ?? 0) > 0 && (statuses.get(409) ?? 0) > 0, 'handlers failed and duplicates met in flight')
  const rows = await effects()
  t.same(rows.map(row => row.event), events.map(kvm => `edis:${kvm}:100`).sort(), 'one effect per event, none missing, none doubled')
})

t.test('PostgreSQL restarted mid-run: 503s while it is down, and once it is back nothing is lost or doubled', async t => {
  const server = await ownPostgres(t)
  if (server === undefined) return
  const admin = new pg.Client({ connectionString: server.url })
  await admin.connect()
  await admin.query('CREATE TABLE effects (event text NOT NULL, pid integer NOT NULL)')
  await admin.end()
  const pool = new pg.Pool({ connectionString: server.url, connectionTimeoutMillis: 1000 })
  // Idle clients the server drops report it here; the next query takes a new connection.
  pool.on('error', () => {})
  t.teardown(async () => { await pool.end() })
  const app = await replica(t, pool, { claimTtl: 2000 })
  const accepted = new Set<string>()
  const answers: number[] = []
  const send = async (kvm: string): Promise<void> => {
    const status = (await deliver(app, kvm)).statusCode
    answers.push(status)
    if (status === 200) accepted.add(kvm)
  }
  const events = Array.from({ length: 40 }, (_, i) => `kvm-${i}`)
  for (const kvm of events.slice(0, 10)) await send(kvm)
  await server.stop()
  for (const kvm of events.slice(10, 30)) await send(kvm)
  await server.start()
  for (const kvm of events.slice(30)) await send(kvm)
  t.same(answers.slice(0, 10), Array(10).fill(200), 'accepted before the stop')
  t.same(new Set(answers.slice(10, 30)), new Set([503]), 'refused with 503 while it is down, never accepted unrecorded')
  // The provider redelivers what was refused; some connections of the pool died with the server.
  for (const kvm of events) {
    for (let attempt = 0; !accepted.has(kvm) && attempt < 50; attempt++) {
      await send(kvm)
      if (!accepted.has(kvm)) await sleep(100)
    }
  }
  t.equal(accepted.size, events.length, 'every event accepted in the end')
  const { rows } = await pool.query('SELECT event, count(*)::int AS n FROM effects GROUP BY event ORDER BY event')
  t.same(rows, events.map(kvm => ({ event: `edis:${kvm}:100`, n: 1 })).sort((a, b) => a.event < b.event ? -1 : 1), 'each event\'s effect once: nothing lost, nothing doubled')
})
