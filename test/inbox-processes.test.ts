// The inbox across processes, over the real Redis: a worker SIGKILLed mid-run, and two API replicas
// with two worker processes under redeliveries and random failures. Each event succeeds once.
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import providerCallbacks, { createInboxWorker, type DeadLettered } from '../lib/index.js'
import { postBatch, signedItem, VOX } from './helpers.js'
import { counts, testInbox, until, workerProcess } from './inbox-helpers.js'
import { cleanKeys, connect, REDIS_URL, redisAvailable, seededRandom } from './redis-helpers.js'

// Child processes start the TypeScript loader (seconds of CPU each on a busy machine), and the
// stalled-job detection waits out a lock: room for both, and still an end to a hang.
t.setTimeout(300_000)

const startWorker = (t: Test, env: Record<string, string>): ReturnType<typeof workerProcess> => workerProcess(t, 'inbox-worker.ts', { REDIS_URL, ...env })

async function apiReplica (t: Test, inbox: ReturnType<typeof testInbox>['inbox']): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(providerCallbacks, { voximplant: { secret: VOX }, inbox, worker: false })
  t.teardown(async () => { await app.close() })
  await app.ready()
  return app
}

t.test('with Redis', async t => {
  if (!await redisAvailable(t)) return
  const redis = await connect()
  t.teardown(() => { redis.disconnect() })
  const list = async (queue: string, name: string): Promise<string[]> => await redis.call('LRANGE', `${queue}:${name}`, '0', '-1') as string[]

  t.test('a worker SIGKILLed mid-run, attempts 3: another worker finds the job stalled, its runs wait for the dead claim without using an attempt, then run it once', async t => {
    // The dead worker's claim outlives the job's lock by seconds: the other worker's runs find the
    // event in flight, more often than the 3 attempts, and each must wait for the claim, not fail.
    const { inbox, name } = testInbox(t, { attempts: 3, backoff: { type: 'fixed', delay: 500 } })
    cleanKeys(t, `${name}:`) // the workers' lists of runs
    const failures: string[] = []
    inbox.on('failed', (_event, error) => { failures.push(error.message) })
    const api = await apiReplica(t, inbox)
    const timing = { LOCK_DURATION: '1000', STALLED_INTERVAL: '500', CLAIM_TTL: '6000' }
    const doomed = startWorker(t, { QUEUE: name, MODE: 'hang', ...timing })
    await doomed.ready
    const id = `voximplant:${VOX.accountId}:1`
    t.equal((await postBatch(api, [signedItem('min_balance', 1)])).statusCode, 200)
    await until(async () => (await list(name, 'started')).length === 1, 'the doomed worker started the run')
    // Ready before the kill: the job stalls and is taken again while the dead claim still lives.
    const rescuer = startWorker(t, { QUEUE: name, MODE: 'ok', ...timing })
    await rescuer.ready
    const killed = once(doomed, 'exit')
    doomed.kill('SIGKILL')
    await killed
    await until(async () => (await list(name, 'succeeded')).length >= 1, 'the other worker ran it')
    await until(async () => (await counts(inbox)).completed === 1, 'completed')
    t.same(await list(name, 'succeeded'), [id], 'one success')
    t.same(await list(name, 'started'), [id, id], 'started by the dead worker, then by the other')
    t.same(await inbox.failed(), [], 'not a dead letter')
    t.same(failures, [], 'no run failed: waiting for the claim is not a failed attempt')
  })

  // Workers A then B killed mid-handler, each after it took the event; then C, healthy, in this
  // process. BullMQ's default maxStalledCount (1) dead-lettered the event at its second stall.
  const twoDeaths = async (t: Test, maxStalledCount?: number): Promise<{ name: string, inbox: ReturnType<typeof testInbox>['inbox'], dead: Array<[string, string, DeadLettered]>, logged: string[] }> => {
    const { inbox, name } = testInbox(t, { attempts: 3, backoff: { type: 'fixed', delay: 500 }, claimTtl: 6000 })
    cleanKeys(t, `${name}:`) // the workers' lists of runs
    const api = await apiReplica(t, inbox)
    const timing = { LOCK_DURATION: '1000', STALLED_INTERVAL: '500', CLAIM_TTL: '6000' }
    const a = startWorker(t, { QUEUE: name, MODE: 'hang', ...timing })
    await a.ready
    t.equal((await postBatch(api, [signedItem('min_balance', 1)])).statusCode, 200)
    await until(async () => (await list(name, 'started')).length === 1, 'worker A started the run')
    const b = startWorker(t, { QUEUE: name, MODE: 'hang', ...timing })
    await b.ready
    const killedA = once(a, 'exit')
    a.kill('SIGKILL')
    await killedA
    // B takes the stalled job, waits for A's claim to expire, then runs it. (The job's attempts, 30,
    // are the fixture's: a worker's fan-out made the job.)
    await until(async () => (await list(name, 'started')).length === 2, 'worker B started the run once A\'s claim expired')
    const dead: Array<[string, string, DeadLettered]> = []
    const logged: string[] = []
    const logger = { error: (_fields: unknown, message: string) => { logged.push(message) }, warn: () => {} }
    const c = createInboxWorker(inbox, {
      lockDuration: 1000,
      stalledInterval: 500,
      ...(maxStalledCount !== undefined && { maxStalledCount }),
      logger: logger as never,
      onAny: async event => { await redis.call('RPUSH', `${name}:succeeded`, event.id) }
    })
    t.teardown(async () => { await c.close() })
    c.on('exhausted', (event, error, why) => { dead.push([event.id, error.message, why]) })
    await c.worker
    const killedB = once(b, 'exit')
    b.kill('SIGKILL')
    await killedB
    return { name, inbox, dead, logged }
  }

  t.test('a job surviving two worker deaths: A and B SIGKILLed mid-handler, C (maxStalledCount by default the inbox\'s attempts) runs it once, no dead letter', async t => {
    const { name, inbox, dead } = await twoDeaths(t)
    const id = `voximplant:${VOX.accountId}:1`
    await until(async () => { const { completed = 0, failed = 0 } = await counts(inbox); return completed + failed === 1 }, 'completed, or dead')
    t.same(await inbox.failed(), [], 'not a dead letter')
    t.same(dead, [], 'no exhausted')
    t.same(await list(name, 'succeeded'), [id], 'C ran it once')
    t.same(await list(name, 'started'), [id, id], 'started by A, then by B')
  })

  t.test('a job stalling more than maxStalledCount: dead-lettered saying it stalled, its attempts and stalls counted, its handlers never run by C', async t => {
    const { name, inbox, dead, logged } = await twoDeaths(t, 1)
    const id = `voximplant:${VOX.accountId}:1`
    await until(() => dead.length === 1, 'dead-lettered')
    t.match(dead, [[id, /^stalled 2 times, more than maxStalledCount \(1\): its workers died mid-run/, { reason: 'stalled', attempts: 0, stalls: 2 }]])
    t.same(logged.filter(line => line.includes('dead-lettered')), [
      'an inbox event is dead-lettered: its runs stalled 2 times (their workers died), more than maxStalledCount 1; 0 of 30 attempts failed'
    ])
    t.same(await list(name, 'succeeded'), [], 'C never ran it')
    t.equal((await inbox.failed()).length, 1)
  })

  t.test('two API replicas, two worker processes, 300 events each delivered three times, a quarter of the runs failing: each succeeds once, no dead letter', async t => {
    // attempts and backoff are the job's, so the API replica's: 30 runs make a dead letter (0.25^30) unthinkable.
    const { inbox, name } = testInbox(t, { attempts: 30 })
    cleanKeys(t, `${name}:`) // the workers' lists of runs
    const replicas = [await apiReplica(t, inbox), await apiReplica(t, inbox)]
    const workers = [1, 2].map(seed => startWorker(t, { QUEUE: name, MODE: 'flaky', SEED: String(seed), CONCURRENCY: '8' }))
    await Promise.all(workers.map(async worker => await worker.ready))
    const random = seededRandom(7)
    const ids = Array.from({ length: 300 }, (_, i) => i + 1)
    // Three deliveries of each, in batches of up to 10, shuffled, to replicas chosen at random, up to 8 at once.
    const deliveries = [...ids, ...ids, ...ids].sort(() => random() - 0.5)
    const batches: number[][] = []
    for (let i = 0; i < deliveries.length; i += 10) batches.push(deliveries.slice(i, i + 10))
    const statuses: number[] = []
    const send = async (): Promise<void> => {
      for (let batch = batches.shift(); batch !== undefined; batch = batches.shift()) {
        const replica = replicas[random() < 0.5 ? 0 : 1]!
        statuses.push((await postBatch(replica, batch.map(id => signedItem('min_balance', id)))).statusCode)
      }
    }
    await Promise.all(Array.from({ length: 8 }, send))
    t.same([...new Set(statuses)], [200])
    await until(async () => { const { completed = 0, failed = 0 } = await counts(inbox); return completed + failed === ids.length }, 'every event completed or dead', 240_000)
    const succeeded = await list(name, 'succeeded')
    t.equal(succeeded.length, ids.length, 'one success per event')
    t.same([...new Set(succeeded)].sort(), ids.map(id => `voximplant:${VOX.accountId}:${id}`).sort())
    t.ok((await list(name, 'failed')).length > 0, 'some runs failed and were retried')
    t.same(await counts(inbox), { completed: ids.length, failed: 0, waiting: 0, active: 0, delayed: 0 })
  })
})
