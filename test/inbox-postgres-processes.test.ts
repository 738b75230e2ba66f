// The transactional PostgreSQL inbox across processes: a worker SIGKILLed mid-job, after its
// handler's write through the transaction and before the commit.
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { postBatch, signedItem, VOX } from './helpers.js'
import { counts, until, workerProcess } from './inbox-helpers.js'
import { PG_URL, postgresAvailable } from './pg-helpers.js'
import { appWithInbox, pgInbox } from './pg-inbox-helpers.js'

// Child processes start the TypeScript loader, and the stalled-job detection waits out a lock.
t.setTimeout(300_000)

const startWorker = (t: Test, env: Record<string, string>): ReturnType<typeof workerProcess> => workerProcess(t, 'pg-inbox-worker.ts', { PG_URL, ...env })

t.test('with PostgreSQL', async t => {
  if (!await postgresAvailable(t)) return

  t.test('a worker SIGKILLed after its handler wrote through the transaction, before the commit: the write rolled back, the job taken again as stalled and committed once by another worker', async t => {
    const test = pgInbox(t, { transactional: true })
    const { inbox, pool, schema } = test
    await pool.query(`create schema if not exists ${schema}`)
    await pool.query('create table ledger (worker text not null, event text not null)')
    await pool.query('create table runs (seq serial primary key, worker text not null, event text not null)')
    const failures: string[] = []
    inbox.on('failed', (_event, error) => { failures.push(error.message) })
    const api = await appWithInbox(t, test, { worker: false })
    await api.ready()
    const timing = { LOCK_DURATION: '1000', STALLED_INTERVAL: '500', CLAIM_TTL: '3000', SCHEMA: schema }
    const doomed = startWorker(t, { WORKER: 'doomed', MODE: 'hang', ...timing })
    await doomed.ready
    const id = `voximplant:${VOX.accountId}:1`
    t.equal((await postBatch(api, [signedItem('min_balance', 1)])).statusCode, 200)
    const runs = async (): Promise<Array<[string, string]>> => (await pool.query('select worker, event from runs order by seq')).rows.map(row => [row.worker, row.event])
    await until(async () => (await runs()).length === 2, 'the doomed worker wrote through its transaction')
    t.same(await runs(), [['doomed', id], ['doomed', 'written']])
    t.same((await pool.query('select * from ledger')).rows, [], 'not committed: nobody sees the write')
    const rescuer = startWorker(t, { WORKER: 'rescuer', MODE: 'ok', ...timing })
    await rescuer.ready
    const killed = once(doomed, 'exit')
    doomed.kill('SIGKILL')
    await killed
    await until(async () => (await counts(inbox)).completed === 1, 'completed by the other worker')
    t.same((await pool.query('select worker, event from ledger')).rows, [{ worker: 'rescuer', event: id }], 'the dead run\'s write rolled back, the rescuer\'s committed, once')
    t.same(await runs(), [['doomed', id], ['doomed', 'written'], ['rescuer', id]], 'run by the dead worker, then once by the other')
    t.same((await pool.query('select key, done from provider_callbacks_inbox')).rows, [{ key: `test:${id}`, done: true }], 'its done mark committed with it')
    t.same(await inbox.failed(), [], 'not a dead letter')
    t.same(failures, [], 'no run failed: waiting for the dead claim is not a failed attempt')
  })
})
