// The inbox on BullMQ's PostgreSQL backend, against the real PostgreSQL: answered once stored,
// handlers run by a worker with retries, dead letters and replay, each event succeeding once;
// transactional handlers; PostgreSQL down and back.
import pg from 'pg'
import t from 'tap'
import { createInboxWorker, postgresInbox, type DeadLettered } from '../lib/index.js'
import type { PostgresInbox } from '../lib/inbox/postgres-inbox.js'
import type { Job, Queue } from 'bullmq'
import { jobIdOf } from '../lib/inbox/job.js'
import { basic, CREDENTIALS, EDIS_BODIES, FORM, postBatch, signedItem, VOX } from './helpers.js'
import { counts, until } from './inbox-helpers.js'
import { ownPostgres, PG_URL, postgresAvailable } from './pg-helpers.js'
import { appWithInbox, FAST, pgInbox } from './pg-inbox-helpers.js'

t.setTimeout(180_000)

const item = (id: number, type = 'min_balance'): Record<string, unknown> => signedItem(type, id)
const idOf = (id: number): string => `voximplant:${VOX.accountId}:${id}`

t.test('options: a wrong one is refused at once, with what is wrong', async t => {
  const connection = { connectionString: PG_URL }
  const bad: Array<[unknown, RegExp]> = [
    [undefined, /postgresInbox needs options/],
    [{}, /connection must be a node-postgres pool config/],
    [{ connection: new pg.Pool() }, /not a pool/],
    [{ connection, name: 'a:b' }, /postgresInbox name must be/],
    [{ connection, attempts: 0 }, /postgresInbox attempts must be a positive integer/],
    [{ connection, backoff: { type: 'fixed', delay: 1, jiter: 1 } }, /postgresInbox backoff has no option "jiter"/],
    [{ connection: { ...connection, schema: 'a-b' } }, /connection.schema must be a plain SQL identifier/],
    [{ connection, claimTable: 'x;drop' }, /claimTable must be a plain SQL identifier/],
    [{ connection, transactional: 'yes' }, /transactional must be a boolean/]
  ]
  for (const [options, message] of bad) {
    t.throws(() => postgresInbox(options as never), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message }, String(message))
  }
  const inbox = postgresInbox({ connection }) as PostgresInbox
  t.match(inbox.settings, { name: 'provider-callbacks', schema: 'bullmq', claimTable: 'provider_callbacks_inbox', transactional: false, attempts: 15 })
  t.match(inbox.connection, { connectionString: PG_URL, schema: 'bullmq', migrate: true, connectionTimeoutMillis: 5000 })
  await inbox.close()
})

t.test('with PostgreSQL', async t => {
  if (!await postgresAvailable(t)) return

  t.test('answered 200 once stored; a redelivery stores nothing new; the worker runs each event once', async t => {
    const test = pgInbox(t)
    const { inbox } = test
    const runs: string[] = []
    const app = await appWithInbox(t, test, { worker: false })
    t.equal((await postBatch(app, [item(1), item(2)])).statusCode, 200)
    // Stored before the answer: the jobs are there, and nothing ran (no worker yet).
    t.same(await counts(inbox), { completed: 0, failed: 0, waiting: 2, active: 0, delayed: 0 })
    t.equal((await postBatch(app, [item(1), item(2), item(1)])).statusCode, 200)
    t.same(await counts(inbox), { completed: 0, failed: 0, waiting: 2, active: 0, delayed: 0 }, 'a redelivery stores nothing new')
    const worker = createInboxWorker(inbox, { onAny: event => { runs.push(event.id) } })
    test.before(async () => { await worker.close() })
    await until(async () => (await counts(inbox)).completed === 2, 'both jobs completed')
    t.same(runs.sort(), [idOf(1), idOf(2)])
    // A redelivery of a completed event: 200, no job, nothing run.
    t.equal((await postBatch(app, [item(1)])).statusCode, 200)
    t.same(await counts(inbox), { completed: 2, failed: 0, waiting: 0, active: 0, delayed: 0 })
    await worker.close()
    t.same(runs.sort(), [idOf(1), idOf(2)])
  })

  t.test('two inboxes in one schema, one claims table: the same event is each one\'s, and runs once in each', async t => {
    const test = pgInbox(t)
    const other = postgresInbox({ connection: { connectionString: PG_URL, schema: test.schema, application_name: test.schema }, name: 'other', ...FAST })
    test.before(async () => { await other.close() })
    const runs: string[] = []
    for (const inbox of [test.inbox, other]) {
      const app = await appWithInbox(t, { ...test, inbox }, { worker: false })
      t.equal((await postBatch(app, [item(1)])).statusCode, 200)
      const worker = createInboxWorker(inbox, { onAny: event => { runs.push(`${inbox.name} ${event.id}`) } })
      test.before(async () => { await worker.close() })
      await until(async () => (await counts(inbox)).completed === 1, `${inbox.name}'s job completed`)
    }
    t.same(runs, [`test ${idOf(1)}`, `other ${idOf(1)}`], 'the second inbox\'s run did not find the first\'s done mark')
    const { rows } = await test.pool.query('SELECT key FROM provider_callbacks_inbox ORDER BY key')
    t.same(rows.map(row => row.key), [`other:${idOf(1)}`, `test:${idOf(1)}`])
  })

  t.test('a handler that fails: retried with backoff, then a dead letter; failed(), retry() and retryFailed() replay it once fixed', async t => {
    const test = pgInbox(t, { attempts: 3 })
    const { inbox } = test
    let fixed = false
    const runs: string[] = []
    const successes: string[] = []
    const failures: string[] = []
    const exhausted: Array<[string, string, DeadLettered]> = []
    inbox.on('failed', (event, error) => { failures.push(`${event.id}: ${error.message}`) })
    const app = await appWithInbox(t, test, {
      handlers: {
        'min-balance': async event => {
          runs.push(event.id)
          if (!fixed) throw new Error('the ledger is down')
          successes.push(event.id)
        }
      }
    })
    app.providerCallbacks.inbox!.on('exhausted', (event, error, why) => { exhausted.push([event.id, error.message, why]) })
    t.equal((await postBatch(app, [item(3), item(4), item(5)])).statusCode, 200)
    // The worker says so once BullMQ moved the job: the state first, then its 'failed' and 'exhausted'.
    await until(async () => (await counts(inbox)).failed === 3 && exhausted.length === 3, 'all three dead-lettered, and said so')
    t.same(runs.sort(), [idOf(3), idOf(3), idOf(3), idOf(4), idOf(4), idOf(4), idOf(5), idOf(5), idOf(5)], 'three runs each')
    t.equal(failures.length, 9)
    const why = { reason: 'failed', attempts: 3, stalls: 0 }
    t.same(exhausted.sort(), [[idOf(3), 'the ledger is down', why], [idOf(4), 'the ledger is down', why], [idOf(5), 'the ledger is down', why]])
    const dead = await inbox.failed()
    t.same(dead.map(({ event, attempts, error }) => ({ id: event.id, attempts, error, date: event.receivedAt instanceof Date })).sort((a, b) => a.id.localeCompare(b.id)), [
      { id: idOf(3), attempts: 3, error: 'the ledger is down', date: true },
      { id: idOf(4), attempts: 3, error: 'the ledger is down', date: true },
      { id: idOf(5), attempts: 3, error: 'the ledger is down', date: true }
    ])
    // A redelivery of a dead letter stores nothing new.
    t.equal((await postBatch(app, [item(3)])).statusCode, 200)
    t.same(await counts(inbox), { completed: 0, failed: 3, waiting: 0, active: 0, delayed: 0 })

    fixed = true
    t.equal(await inbox.retry(idOf(3)), true)
    await until(async () => (await counts(inbox)).completed === 1, 'the retried one completed')
    t.equal(await inbox.retry(idOf(3)), false, 'a completed event is not a dead letter')
    t.equal(await inbox.retry('voximplant:1:404'), false, 'nor is an unknown one')
    t.equal(await inbox.retryFailed(), 2)
    await until(async () => (await counts(inbox)).completed === 3, 'every one completed')
    t.same(successes.sort(), [idOf(3), idOf(4), idOf(5)], 'each succeeded once')
    t.same(await inbox.failed(), [])
    t.equal(await inbox.retryFailed(), 0)
  })

  const edis = async (app: Awaited<ReturnType<typeof appWithInbox>>): Promise<number> => (await app.inject({
    method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, authorization: basic(CREDENTIALS.username, CREDENTIALS.password) }, payload: EDIS_BODIES.canonical
  })).statusCode
  const edisId = 'edis:kvm_123456_789012:80'

  t.test('an event id again once its window is over: a new job, run again, though completed jobs are kept far longer; within it, nothing new', async t => {
    const test = pgInbox(t, { edisWindow: 1000, voximplantWindow: 1000, removeOnComplete: { age: 3600 } })
    const { inbox } = test
    const runs: string[] = []
    const app = await appWithInbox(t, test)
    app.providerCallbacks.onAny(event => { runs.push(event.id) })
    t.same([await edis(app), (await postBatch(app, [item(9)])).statusCode], [200, 200])
    await until(async () => (await counts(inbox)).completed === 2, 'both run')
    const queue = await inbox.queue() as unknown as Queue
    const jobs = async (): Promise<Array<Job | undefined>> => await Promise.all([edisId, idOf(9)].map(async id => await queue.getJob(jobIdOf(id))))
    const [edisJob, voxJob] = await jobs()
    await until(async () => (await jobs()).every(job => job?.finishedOn !== undefined && Date.now() - job.finishedOn > 1100), 'both windows over')
    t.same([await edis(app), (await postBatch(app, [item(9)])).statusCode], [200, 200])
    await until(() => runs.length === 4, 'both run again')
    await until(async () => (await counts(inbox)).completed === 2, 'both completed')
    t.same(runs.sort(), [edisId, edisId, idOf(9), idOf(9)].sort(), 'each event ran again, once')
    const [edisAgain, voxAgain] = await jobs()
    t.ok(edisAgain!.timestamp > edisJob!.timestamp && voxAgain!.timestamp > voxJob!.timestamp, 'new jobs in place of the old')
    t.same(await counts(inbox), { completed: 2, failed: 0, waiting: 0, active: 0, delayed: 0 }, 'the old jobs removed')
  })

  t.test('an EDIS event redelivered within its window: one job, one run', async t => {
    const test = pgInbox(t, { edisWindow: 3_600_000, removeOnComplete: { age: 3600 } })
    const runs: string[] = []
    const app = await appWithInbox(t, test)
    app.providerCallbacks.onAny(event => { runs.push(event.id) })
    t.equal(await edis(app), 200)
    await until(async () => (await counts(test.inbox)).completed === 1, 'run')
    t.equal(await edis(app), 200)
    t.same(await counts(test.inbox), { completed: 1, failed: 0, waiting: 0, active: 0, delayed: 0 }, 'nothing added')
    t.same(runs, [edisId])
  })

  t.test('a dead letter older than its window stays one: its event again stores nothing', async t => {
    const test = pgInbox(t, { attempts: 1, edisWindow: 1000, removeOnComplete: { count: 100 } })
    const runs: string[] = []
    const app = await appWithInbox(t, test, { handlers: { 'traffic-threshold': event => { runs.push(event.id); throw new Error('down') } } })
    t.equal(await edis(app), 200)
    await until(async () => (await counts(test.inbox)).failed === 1, 'dead-lettered')
    const queue = await test.inbox.queue() as unknown as Queue
    await until(async () => { const job = await queue.getJob(jobIdOf(edisId)); return Date.now() - job!.finishedOn! > 1100 }, 'its window over')
    t.equal(await edis(app), 200)
    t.same(await counts(test.inbox), { completed: 0, failed: 1, waiting: 0, active: 0, delayed: 0 })
    t.same(runs, [edisId])
  })

  t.test('transactional: a handler\'s write and the done mark commit together; a failing run rolls its write back', async t => {
    const test = pgInbox(t, { transactional: true, attempts: 3 })
    const { inbox, pool, schema } = test
    await pool.query(`create schema if not exists ${schema}`)
    await pool.query('create table ledger (event text not null, run int not null)')
    let run = 0
    const app = await appWithInbox(t, test, {
      handlers: {
        'min-balance': async (event, _request, context) => {
          run++
          const tx = (context as unknown as { tx: pg.PoolClient }).tx
          await tx.query(`insert into ${schema}.ledger (event, run) values ($1, $2)`, [event.id, run])
          if (run === 1) throw new Error('after the write, before the commit')
        }
      }
    })
    t.equal((await postBatch(app, [item(6)])).statusCode, 200)
    await until(async () => (await counts(inbox)).completed === 1, 'the job completed')
    t.same((await pool.query('select event, run from ledger')).rows, [{ event: idOf(6), run: 2 }], 'the first run\'s write rolled back, the second\'s committed')
    const { rows } = await pool.query('select key, done from provider_callbacks_inbox')
    t.same(rows, [{ key: `test:${idOf(6)}`, done: true }], 'with its done mark')
  })

  t.test('PostgreSQL down: 503, nothing stored; back: stored, and the worker (started while it was down) runs it', async t => {
    const postgres = await ownPostgres(t)
    if (postgres === undefined) return
    await postgres.stop('fast')
    const test = pgInbox(t, { addTimeout: 2000 }, postgres.url)
    const { inbox } = test
    const runs: string[] = []
    // Made, and started, while the server is down: both its Queue and its Worker must be made anew.
    const app = await appWithInbox(t, test, { handlers: { 'min-balance': event => { runs.push(event.id) } } })
    await app.ready()
    t.equal((await postBatch(app, [item(7)])).statusCode, 503)
    t.equal((await postBatch(app, [item(7)])).statusCode, 503, 'again, without waiting for ever')
    await postgres.start()
    await until(async () => (await postBatch(app, [item(7)])).statusCode === 200, 'stored once PostgreSQL is back')
    await until(() => runs.length === 1, 'the worker ran it')
    await until(async () => (await counts(inbox)).completed === 1, 'completed')

    // A worker started while the server is down, and closed before it is back: it closes, and
    // no Worker is made again after.
    await postgres.stop('fast')
    const late = createInboxWorker(inbox, { onAny: event => { runs.push(`late ${event.id}`) } })
    await late.worker
    await late.close()
    await postgres.start()

    // Down again, with the queue and worker up: 503, then, back, stored and run.
    await postgres.stop('immediate')
    t.equal((await postBatch(app, [item(8)])).statusCode, 503)
    await postgres.start()
    await until(async () => (await postBatch(app, [item(8)])).statusCode === 200, 'stored once PostgreSQL is back again')
    await until(() => runs.length === 2, 'the worker ran it too')
    t.same(runs, [idOf(7), idOf(8)])
  })
})
