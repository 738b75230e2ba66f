// The inbox against the real Redis: answered once stored, handlers run by a worker with retries,
// dead letters and replay, each event succeeding once.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Queue } from 'bullmq'
import type { Redis, RedisOptions } from 'ioredis'
import t, { type Test } from 'tap'
import providerCallbacks, {
  createInboxWorker, type AnyProviderCallbackEvent, type DeadLettered, type Inbox, type ProviderCallbacksOptions, UnrecoverableError, bullmqInbox
} from '../lib/index.js'
import type { BullmqInbox } from '../lib/inbox/inbox.js'
import { eventIdOf, jobIdOf } from '../lib/inbox/job.js'
import { BACKLOG, startFanOut } from '../lib/inbox/fan-out.js'
import { basic, CREDENTIALS, EDIS_BODIES, FORM, gate, postBatch, signedItem, VOX } from './helpers.js'
import { claimPrefix, counts, fannedOut, received, testInbox, until, workerConnection } from './inbox-helpers.js'
import { connect, freePort, OwnRedis, redisAvailable } from './redis-helpers.js'

t.setTimeout(120_000)

async function appWithInbox (t: Test, inbox: Inbox, options: Partial<ProviderCallbacksOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(providerCallbacks, { voximplant: { secret: VOX }, edis: { credentials: CREDENTIALS }, inbox, ...options })
  t.teardown(async () => { await app.close() })
  return app
}

const item = (id: number, type = 'min_balance'): Record<string, unknown> => signedItem(type, id)
const idOf = (id: number): string => `voximplant:${VOX.accountId}:${id}`

/**
 * A redis-server of the test's own that `hold(seconds)` keeps from answering anyone (DEBUG SLEEP,
 * written to Redis before it returns): a Redis that is connected but slow. Its promise settles when
 * Redis answers again.
 */
async function busyRedis (t: Test): Promise<{ url: string, hold: (seconds: number) => Promise<unknown> }> {
  const redis = new OwnRedis(await freePort(), ['--enable-debug-command', 'yes'])
  await redis.start()
  t.teardown(async () => { await redis.destroy() })
  const blocker = workerConnection(redis.url)
  t.teardown(() => { blocker.disconnect() })
  await blocker.ping()
  return { url: redis.url, hold: async seconds => await blocker.call('DEBUG', 'SLEEP', String(seconds)) }
}

t.test('job ids: every event id becomes an id BullMQ takes (no ":", never all digits), and back', async t => {
  for (const id of ['voximplant:1234567:89', 'edis:kvm_1:80', 'edis:a%3Ab:c:%', 'edis:%25:x']) {
    const jobId = jobIdOf(id)
    t.notMatch(jobId, /:/)
    t.notMatch(jobId, /^\d+$/)
    t.equal(eventIdOf(jobId), id)
  }
})

t.test('options: a wrong one is refused at once, with what is wrong', async t => {
  const connection = workerConnection()
  t.teardown(() => { connection.disconnect() })
  const bad: Array<[unknown, RegExp]> = [
    [undefined, /needs options/],
    [{}, /connection must be an ioredis client/],
    [{ connection, name: '' }, /name must be/],
    [{ connection, name: 'a:b' }, /name must be/],
    [{ connection, prefix: '' }, /prefix must be/],
    [{ connection, attempts: 0 }, /attempts must be a positive integer/],
    [{ connection, claimTtl: 2 ** 31 }, /claimTtl must be/],
    [{ connection, backoff: { type: 'linear', delay: 1 } }, /backoff must be/],
    [{ connection, backoff: { type: 'fixed', delay: -1 } }, /backoff.delay must be an integer of ms, 0 or more, got -1/],
    [{ connection, backoff: { type: 'fixed', delay: 1.5 } }, /backoff.delay must be an integer/],
    [{ connection, backoff: 1000 }, /backoff must be \{ type: 'exponential' \| 'fixed', delay: ms, jitter\? \}, got 1000/]
  ]
  // What BullMQ would refuse at every add (so no event is ever stored) or take and misread: each
  // refused here, at construction, naming the option and the value.
  bad.push(
    [{ connection, backoff: { type: 'exponential', delay: 1000, jitter: 2 } }, /backoff.jitter must be a number from 0 to 1, got 2$/],
    [{ connection, backoff: { type: 'exponential', delay: 1000, jitter: -0.1 } }, /backoff.jitter must be a number from 0 to 1, got -0.1$/],
    [{ connection, backoff: { type: 'fixed', delay: 1000, jitter: Number.NaN } }, /backoff.jitter must be a number from 0 to 1, got NaN$/],
    [{ connection, backoff: { type: 'fixed', delay: 1000, jitter: '0.5' } }, /backoff.jitter must be a number from 0 to 1, got '0.5'$/],
    [{ connection, backoff: { type: 'fixed', delay: 1000, jiter: 0.5 } }, /backoff has no option "jiter" \(it takes type, delay, jitter\)/],
    [{ connection, removeOnComplete: true }, /removeOnComplete must be \{ age: seconds, count\? \} or \{ count \}, got true$/],
    [{ connection, removeOnComplete: 100 }, /removeOnComplete must be .*, got 100$/],
    [{ connection, removeOnComplete: {} }, /removeOnComplete must be .*, got \{\}$/],
    [{ connection, removeOnComplete: { age: -1 } }, /removeOnComplete.age must be an integer, 0 or more, got -1$/],
    [{ connection, removeOnComplete: { age: 3600, count: 1.5 } }, /removeOnComplete.count must be an integer, 0 or more, got 1.5$/],
    [{ connection, removeOnComplete: { maxAge: 3600 } }, /removeOnComplete must be .*, got \{ maxAge: 3600 \}$/],
    [{ connection, removeOnComplete: { age: 3600, limit: 10 } }, /removeOnComplete has no option "limit" \(it takes age, count\)/],
    [{ connection, removeOnFail: { count: -1 } }, /removeOnFail.count must be an integer, 0 or more, got -1$/],
    [{ connection, removeOnFail: { age: Infinity } }, /removeOnFail.age must be an integer, 0 or more, got Infinity$/],
    [{ connection, removeOnFail: [] }, /removeOnFail must be .*, got \[\]$/],
    [{ connection, attempts: 1.5 }, /attempts must be a positive integer of at most 2147483647, got 1.5$/],
    [{ connection, addTimeout: Number.NaN }, /addTimeout must be a positive integer of at most 2147483647, got NaN$/]
  )
  for (const [options, message] of bad) {
    t.throws(() => bullmqInbox(options as never), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message }, String(message))
  }
  // The bounds themselves are BullMQ's, and taken.
  for (const options of [
    { backoff: { type: 'fixed', delay: 0, jitter: 0 } },
    { backoff: { type: 'exponential', delay: 1000, jitter: 1 } },
    { backoff: { type: 'exponential', delay: 1000 } },
    { removeOnComplete: { count: 0 }, removeOnFail: { age: 0, count: 10 } }
  ] as const) {
    const inbox = bullmqInbox({ connection, name: 'test-inbox-options', ...options }) as BullmqInbox
    t.teardown(async () => { await inbox.close() })
    t.match(inbox.settings, options, JSON.stringify(options))
  }
  const register = async (options: Partial<ProviderCallbacksOptions>): Promise<void> => {
    const app = Fastify()
    try {
      await app.register(providerCallbacks, { voximplant: { secret: VOX }, ...options })
    } finally {
      await app.close()
    }
  }
  await t.rejects(register({ inbox: {} as Inbox }), { message: /inbox must be made by bullmqInbox/ })
  const { inbox } = testInbox(t)
  await t.rejects(register({ inbox, worker: 'yes' as never }), { message: /worker must be true, false or an object/ })
  t.throws(() => createInboxWorker(inbox, { handlers: 'x' as never }), { message: /handlers must be an object/ })
  t.throws(() => createInboxWorker(inbox, { concurrency: 0 }), { message: /concurrency must be a positive integer/ })
  t.throws(() => createInboxWorker(inbox, { maxStalledCount: -1 }), { message: /maxStalledCount must be an integer of at least 0, got -1/ })
  t.throws(() => createInboxWorker(inbox, { maxStalledCount: 1.5 }), { message: /maxStalledCount must be an integer of at least 0/ })
})

t.test('with Redis', async t => {
  if (!await redisAvailable(t)) return

  t.test('a handler that takes 5 s: the provider is answered first, the handler then runs to its end, once', async t => {
    const { inbox } = testInbox(t)
    const order: string[] = []
    let finished!: () => void
    const done = new Promise<void>(resolve => { finished = resolve })
    const app = await appWithInbox(t, inbox, {
      handlers: {
        'min-balance': async (_event, request) => {
          order.push(`handler started (request ${typeof request})`)
          await sleep(5000)
          order.push('handler finished')
          finished()
        }
      }
    })
    await app.ready()
    const response = await postBatch(app, [item(1)])
    order.push(`answered ${response.statusCode}`)
    await done
    t.same(order.filter(step => step.startsWith('answered')), ['answered 200'])
    t.ok(order.indexOf('answered 200') < order.indexOf('handler finished'), order.join(', '))
    t.ok(order.includes('handler started (request undefined)'), 'a handler run by the worker has no request')
    await until(async () => (await counts(inbox)).completed === 1, 'the job completed')
  })

  t.test('a handler failing twice then succeeding: retried by the worker, one success, no redelivery, no dead letter', async t => {
    const { inbox } = testInbox(t, { attempts: 5 })
    const runs: string[] = []
    const failures: string[] = []
    inbox.on('failed', (event, error) => { failures.push(`${event.id}: ${error.message}`) })
    const app = await appWithInbox(t, inbox, {
      handlers: {
        'min-balance': event => {
          runs.push(event.id)
          // eslint-disable-next-line no-throw-literal -- a handler may throw anything: a string too
          if (runs.length === 1) throw 'boom 1'
          if (runs.length === 2) throw new Error('boom 2')
        }
      }
    })
    t.equal((await postBatch(app, [item(2)])).statusCode, 200)
    await until(async () => (await counts(inbox)).completed === 1, 'the job completed')
    t.same(runs, [idOf(2), idOf(2), idOf(2)])
    t.same(failures, [`${idOf(2)}: boom 1`, `${idOf(2)}: boom 2`])
    t.same(await inbox.failed(), [])
  })

  t.test('a handler that always fails: dead-lettered with its error and attempts, exhausted emitted saying every attempt failed; replayed once fixed, it runs exactly once', async t => {
    const { inbox } = testInbox(t, { attempts: 3 })
    let fixed = false
    const successes: string[] = []
    const exhausted: Array<[string, string, DeadLettered]> = []
    const app = await appWithInbox(t, inbox, {
      handlers: {
        'min-balance': async event => {
          if (!fixed) throw new Error('the ledger is down')
          successes.push(event.id)
        }
      }
    })
    app.providerCallbacks.inbox!.on('exhausted', (event, error, why) => { exhausted.push([event.id, error.message, why]) })
    t.equal((await postBatch(app, [item(3), item(4)])).statusCode, 200)
    // The worker says so once BullMQ moved the job: the state first, then its 'exhausted'.
    await until(async () => (await counts(inbox)).failed === 2 && exhausted.length === 2, 'both dead-lettered, and said so')
    const dead = await app.providerCallbacks.inbox!.failed()
    t.same(dead.map(({ event, attempts, error }) => ({ id: event.id, name: event.name, attempts, error, date: event.receivedAt instanceof Date })), [
      { id: idOf(3), name: 'min-balance', attempts: 3, error: 'the ledger is down', date: true },
      { id: idOf(4), name: 'min-balance', attempts: 3, error: 'the ledger is down', date: true }
    ])
    const why = { reason: 'failed', attempts: 3, stalls: 0 }
    t.same(exhausted.sort(), [[idOf(3), 'the ledger is down', why], [idOf(4), 'the ledger is down', why]])

    // A redelivery of a dead letter: 200; once fanned out, no job more, nothing run.
    t.equal((await postBatch(app, [item(3)])).statusCode, 200)
    await fannedOut(inbox)
    t.same(await counts(inbox), { completed: 0, failed: 2, waiting: 0, active: 0, delayed: 0 })

    fixed = true
    t.equal(await inbox.retry(idOf(3)), true)
    await until(async () => (await counts(inbox)).completed === 1, 'the replayed event completed')
    t.same(successes, [idOf(3)])
    t.equal(await inbox.retry(idOf(3)), false, 'no longer a dead letter')
    t.equal(await inbox.retry(idOf(999)), false, 'never stored')
    t.equal(await inbox.retryFailed(), 1)
    await until(async () => (await counts(inbox)).completed === 2, 'the other replayed event completed')
    t.same(successes, [idOf(3), idOf(4)])
    t.same(await inbox.failed(), [])
  })

  t.test('UnrecoverableError: dead-lettered after one run, whatever the attempts left; from one handler of two, too', async t => {
    const { inbox } = testInbox(t, { attempts: 10 })
    const runs: string[] = []
    const exhausted: DeadLettered[] = []
    inbox.on('exhausted', (_event, _error, why) => { exhausted.push(why) })
    const app = await appWithInbox(t, inbox, {
      handlers: {
        'min-balance': event => {
          runs.push(event.id)
          throw new UnrecoverableError('this account is not ours')
        }
      }
    })
    // eslint-disable-next-line no-throw-literal -- a handler may throw anything; its text is kept
    app.providerCallbacks.on('min-balance', () => { throw 'and another' })
    app.providerCallbacks.onAny(async event => { if (event.name === 'min-balance') throw new Error('and a third') })
    t.equal((await postBatch(app, [item(5)])).statusCode, 200)
    await until(async () => (await counts(inbox)).failed === 1 && exhausted.length === 1, 'dead-lettered, and said so')
    t.same(runs, [idOf(5)])
    const [dead] = await inbox.failed()
    t.equal(dead?.attempts, 1)
    t.match(dead?.error, /^3 handlers failed: this account is not ours; and another; and a third$/)
    t.same(exhausted, [{ reason: 'unrecoverable', attempts: 1, stalls: 0 }])
  })

  t.test('a redelivery of an event stored, then done: 200 each time, one job, one run', async t => {
    const { inbox } = testInbox(t)
    const api = await appWithInbox(t, inbox, { worker: false })
    t.equal((await postBatch(api, [item(6), item(6)])).statusCode, 200, 'twice in one batch')
    t.equal((await postBatch(api, [item(6)])).statusCode, 200, 'again while stored')
    t.same(await received(inbox), [[idOf(6), idOf(6)], [idOf(6)]], 'each request stored as received, until a worker fans it out')

    const runs: Array<string | undefined> = []
    const worker = createInboxWorker(inbox, { handlers: { 'min-balance': (event, request) => { runs.push(`${event.id} ${typeof request}`) } } })
    t.teardown(async () => { await worker.close() })
    await until(async () => (await counts(inbox)).completed === 1, 'the job completed')
    await fannedOut(inbox)
    t.same(await counts(inbox), { completed: 1, failed: 0, waiting: 0, active: 0, delayed: 0 }, 'one job for the event')
    t.equal((await postBatch(api, [item(6)])).statusCode, 200, 'again once done')
    await fannedOut(inbox)
    t.same(await counts(inbox), { completed: 1, failed: 0, waiting: 0, active: 0, delayed: 0 }, 'its fan-out added nothing')
    t.same(runs, [`${idOf(6)} undefined`])
  })

  t.test('the requests of one turn stored in one received entry, of 1000 events at most; fanned out in order, each event run once, with its own receivedAt', async t => {
    const { inbox } = testInbox(t)
    const bullmq = inbox as BullmqInbox
    await bullmq.connect()
    // Each event received at a second of its own: the worker must see each one's.
    const at = (n: number): Date => new Date(Date.UTC(2026, 11, 1) + n * 1000)
    const events = (from: number, count: number): AnyProviderCallbackEvent[] => Array.from({ length: count }, (_, i) => ({
      name: 'min-balance', provider: 'voximplant', id: idOf(from + i), receivedAt: at(from + i), known: true, payload: { callback_id: from + i }
    }) as unknown as AnyProviderCallbackEvent)
    // One turn: a request of 999 events, one of 2 (which fills the job), then one of 3 (the next job's).
    await Promise.all([bullmq.enqueue(events(0, 999)), bullmq.enqueue(events(999, 2)), bullmq.enqueue(events(1001, 3))])
    await bullmq.enqueue(events(1004, 1))
    t.same((await received(inbox)).map(ids => [ids.length, ids[0], ids.at(-1)]), [
      [1001, idOf(0), idOf(1000)],
      [3, idOf(1001), idOf(1003)],
      [1, idOf(1004), idOf(1004)]
    ])
    const runs: string[] = []
    const worker = createInboxWorker(inbox, { onAny: event => { runs.push(`${event.id} ${event.receivedAt.toISOString()}`) } })
    t.teardown(async () => { await worker.close() })
    await until(() => runs.length === 1005, 'every event run')
    t.same(runs, events(0, 1005).map(event => `${event.id} ${event.receivedAt.toISOString()}`), 'in the order received, each with its receivedAt')
    await fannedOut(inbox)
    t.same(await counts(inbox), { completed: 1005, failed: 0, waiting: 0, active: 0, delayed: 0 })
  })

  t.test('requests read while an add is on its way go together in the next received entry, once it is back', async t => {
    const redis = await busyRedis(t)
    const { inbox } = testInbox(t, { addTimeout: 60_000 }, redis.url)
    const bullmq = inbox as BullmqInbox
    await bullmq.connect()
    await inbox.queue()
    const event = (id: number): AnyProviderCallbackEvent[] => [{
      name: 'min-balance', provider: 'voximplant', id: idOf(id), receivedAt: new Date(), known: true, payload: { callback_id: id }
    } as unknown as AnyProviderCallbackEvent]
    const busy = redis.hold(2)
    const stored = [bullmq.enqueue(event(1))]
    // Three more requests, each in a turn of its own, while the first add waits for Redis.
    for (const id of [2, 3, 4]) {
      await sleep(20)
      stored.push(bullmq.enqueue(event(id)))
    }
    await Promise.all([busy, ...stored])
    t.same(await received(inbox), [[idOf(1)], [idOf(2), idOf(3), idOf(4)]])
  })

  t.test('Redis connected but not answering within addTimeout: 503s, and the redeliveries run each event once', async t => {
    const redis = await busyRedis(t)
    const { inbox, name } = testInbox(t, { addTimeout: 500 }, redis.url)
    const app = Fastify()
    await app.register(providerCallbacks, { voximplant: { secret: VOX }, inbox, worker: false })
    t.teardown(async () => { await app.close() })
    await app.ready()
    const busy = redis.hold(3)
    // The second request is read while the first one's add is on its way: bounded all the same.
    const first = postBatch(app, [signedItem('min_balance', 1)])
    await sleep(20)
    const answers = await Promise.all([first, postBatch(app, [signedItem('min_balance', 2)])])
    t.same(answers.map(answer => [answer.statusCode, answer.headers['retry-after'], answer.json().code]),
      Array(2).fill([503, '30', 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE']))
    await busy
    // The adds given up on may still land once Redis answers: the redeliveries add nothing then.
    for (const id of [1, 2]) t.equal((await postBatch(app, [signedItem('min_balance', id)])).statusCode, 200)
    // A worker of its own (the default addTimeout bounds its claims), as in another process.
    const runs: string[] = []
    const { inbox: workers } = testInbox(t, { name }, redis.url)
    const worker = createInboxWorker(workers, { handlers: { 'min-balance': event => { runs.push(event.id) } } })
    t.teardown(async () => { await worker.close() })
    await fannedOut(inbox)
    await until(async () => (await counts(inbox)).completed === 2, 'both completed')
    t.same(runs.sort(), [idOf(1), idOf(2)], 'each once')
    t.same(await counts(inbox), { completed: 2, failed: 0, waiting: 0, active: 0, delayed: 0 })
  })

  t.test('a received entry that cannot be fanned out: logged as an error, taken again after lockDuration, never a dead letter nor an event; the next ones go on', async t => {
    const { inbox, connection } = testInbox(t)
    const bullmq = inbox as BullmqInbox
    await bullmq.connect()
    // An event id BullMQ refuses as a job id (digits only): no event of a route has one.
    await bullmq.enqueue([{ name: 'min-balance', provider: 'voximplant', id: '12345', payload: {}, receivedAt: new Date(), known: true } as unknown as AnyProviderCallbackEvent])
    await bullmq.enqueue([{ name: 'min-balance', provider: 'voximplant', id: idOf(7), payload: {}, receivedAt: new Date(), known: true } as unknown as AnyProviderCallbackEvent])
    const errors: string[] = []
    const logger = { error: (fields: { err: Error }, message: string) => { errors.push(`${message}: ${fields.err.message}`) }, warn: () => {} } as unknown as FastifyBaseLogger
    const failed: string[] = []
    inbox.on('failed', event => { failed.push(event.id) })
    const runs: string[] = []
    // Without telemetry: nothing to count it in, the rest as ever.
    const worker = createInboxWorker(inbox, { onAny: event => { runs.push(event.id) }, logger, lockDuration: 300, stalledInterval: 100, telemetry: false })
    t.teardown(async () => { await worker.close() })
    await until(() => runs.length === 1, 'the next entry run')
    await until(() => errors.length >= 2, 'the failing entry taken again')
    t.match(errors[0], /could not fan received events out into a job each; taken again after lockDuration: .*integer/i)
    t.equal(errors[1], errors[0])
    t.same(runs, [idOf(7)])
    t.same(await inbox.failed(), [])
    t.same(failed, [])
    t.same(await received(inbox), [['12345']], 'still in the stream')
    await worker.close()
    const [pending, , , consumers] = await connection.xpending(bullmq.received, 'provider-callbacks') as [number, string, string, string[][]]
    t.equal(pending, 1, 'pending still')
    t.equal(consumers.length, 1, 'on the closed worker\'s consumer, kept: removing it would drop the entry from the group')
  })

  t.test('an entry taken by a worker that died before fanning it out: another takes it after lockDuration, and its events run once', async t => {
    const { inbox, connection } = testInbox(t)
    const bullmq = inbox as BullmqInbox
    await bullmq.connect()
    await bullmq.enqueue([{ name: 'min-balance', provider: 'voximplant', id: idOf(8), payload: {}, receivedAt: new Date(), known: true } as unknown as AnyProviderCallbackEvent])
    // What a worker does before it dies: join the group, read the entry, and never acknowledge it.
    await connection.xgroup('CREATE', bullmq.received, 'provider-callbacks', '0', 'MKSTREAM')
    const taken = await connection.xreadgroup('GROUP', 'provider-callbacks', 'dead', 'COUNT', 10, 'STREAMS', bullmq.received, '>') as Array<[string, unknown[]]>
    t.equal(taken[0]![1].length, 1, 'the dead worker took it')
    const runs: string[] = []
    const worker = createInboxWorker(inbox, { onAny: event => { runs.push(event.id) }, lockDuration: 500, stalledInterval: 100 })
    t.teardown(async () => { await worker.close() })
    await until(() => runs.length === 1, 'the event run')
    await fannedOut(inbox)
    t.same(runs, [idOf(8)])
    t.same(await connection.xpending(bullmq.received, 'provider-callbacks'), [0, null, null, null], 'nothing left pending')
    t.same(await counts(inbox), { completed: 1, failed: 0, waiting: 0, active: 0, delayed: 0 })
    await worker.close()
    const consumers = await connection.xinfo('CONSUMERS', bullmq.received, 'provider-callbacks') as string[][]
    // The dead one's too, once the worker found it idle with nothing pending: or not yet.
    t.same(consumers.map(fields => fields[fields.indexOf('name') + 1]).filter(name => name !== 'dead'), [], 'a worker closed leaves no consumer behind')
  })

  t.test('consumers dead workers left: removed by a live worker once idle, with nothing pending; one with an entry pending is kept until the entry is taken', async t => {
    const { inbox, connection } = testInbox(t)
    const bullmq = inbox as BullmqInbox
    await bullmq.connect()
    const consumers = async (): Promise<Record<string, number>> => Object.fromEntries((await connection.xinfo('CONSUMERS', bullmq.received, 'provider-callbacks') as string[][])
      .map(fields => [fields[fields.indexOf('name') + 1], Number(fields[fields.indexOf('pending') + 1])]))
    // Two workers that died: one holding no entry, one holding an entry it read.
    await connection.xgroup('CREATE', bullmq.received, 'provider-callbacks', '0', 'MKSTREAM')
    await connection.xgroup('CREATECONSUMER', bullmq.received, 'provider-callbacks', 'dead-idle')
    await bullmq.enqueue([{ name: 'min-balance', provider: 'voximplant', id: idOf(9), payload: {}, receivedAt: new Date(), known: true } as unknown as AnyProviderCallbackEvent])
    const [[, [[entry]]]] = await connection.xreadgroup('GROUP', 'provider-callbacks', 'dead-pending', 'COUNT', 10, 'STREAMS', bullmq.received, '>') as [[string, [[string, unknown]]]]
    t.same(await consumers(), { 'dead-idle': 0, 'dead-pending': 1 })
    const runs: string[] = []
    // lockDuration long: the entry is not taken from the dead worker until the test makes it idle.
    const worker = createInboxWorker(inbox, { onAny: event => { runs.push(event.id) }, lockDuration: 600_000, stalledInterval: 100 })
    t.teardown(async () => { await worker.close() })
    await until(async () => !('dead-idle' in await consumers()), 'the idle consumer removed')
    t.equal((await consumers())['dead-pending'], 1, 'the one with an entry pending is kept, the entry with it')
    t.same(runs, [], 'and its event is not run')
    // Idle for an hour: the live worker takes it.
    await connection.xclaim(bullmq.received, 'provider-callbacks', 'dead-pending', 0, entry!, 'IDLE', 3_600_000)
    await until(() => runs.length === 1, 'the entry taken and its event run')
    await until(async () => !('dead-pending' in await consumers()), 'the consumer it was taken from removed')
    t.same(runs, [idOf(9)])
    t.same(Object.entries(await consumers()).filter(([name]) => name.startsWith('dead')), [], 'neither is left')
  })

  t.test('an entry left idle by a dead worker behind 20 still read by a live one: taken, however many are before it', async t => {
    const { inbox, connection } = testInbox(t)
    const bullmq = inbox as BullmqInbox
    await bullmq.connect()
    for (let id = 1; id <= 21; id++) await bullmq.enqueue([{ name: 'min-balance', provider: 'voximplant', id: idOf(id), payload: {}, receivedAt: new Date(), known: true } as unknown as AnyProviderCallbackEvent])
    await connection.xgroup('CREATE', bullmq.received, 'provider-callbacks', '0', 'MKSTREAM')
    // A live worker read the 21 entries and is at them; the last is then another's, who died an hour ago.
    const [[, read]] = await connection.xreadgroup('GROUP', 'provider-callbacks', 'busy', 'COUNT', 21, 'STREAMS', bullmq.received, '>') as [[string, Array<[string, unknown]>]]
    t.equal(read.length, 21)
    await connection.xclaim(bullmq.received, 'provider-callbacks', 'dead', 0, read[20]![0], 'IDLE', 3_600_000)
    const runs: string[] = []
    // lockDuration long: the busy worker's entries are not idle for it.
    const worker = createInboxWorker(inbox, { onAny: event => { runs.push(event.id) }, lockDuration: 600_000, stalledInterval: 100 })
    t.teardown(async () => { await worker.close() })
    await until(() => runs.length === 1, 'the idle entry taken and run')
    t.same(runs, [idOf(21)])
    // Acknowledged once fanned out, which its run may come before.
    const pending = async (): Promise<[number, string, string, string[][]]> => await connection.xpending(bullmq.received, 'provider-callbacks') as [number, string, string, string[][]]
    await until(async () => (await pending())[0] === 20, 'the idle entry acknowledged')
    t.same((await pending())[3], [['busy', '20']], 'the busy worker\'s entries are left to it')
  })

  t.test('the received stream deleted under a worker, its group with it: logged, made again, and the next events run', async t => {
    const { inbox, connection } = testInbox(t)
    const bullmq = inbox as BullmqInbox
    await bullmq.connect()
    const event = (id: number): AnyProviderCallbackEvent[] => [{ name: 'min-balance', provider: 'voximplant', id: idOf(id), payload: {}, receivedAt: new Date(), known: true } as unknown as AnyProviderCallbackEvent]
    const warnings: string[] = []
    const logger = { error: () => {}, warn: (fields: { err: Error }, message: string) => { warnings.push(`${message}: ${fields.err.message}`) } } as unknown as FastifyBaseLogger
    const runs: string[] = []
    const worker = createInboxWorker(inbox, { onAny: event => { runs.push(event.id) }, logger, stalledInterval: 200 })
    t.teardown(async () => { await worker.close() })
    await bullmq.enqueue(event(1))
    await until(() => runs.length === 1, 'the first event run')
    await connection.del(bullmq.received)
    await until(() => warnings.length >= 1, 'the read failed')
    // Redis 7 ends a blocked read so (UNBLOCKED); a read that was not blocked then finds no group (NOGROUP).
    t.match(warnings[0], /^could not read the received events; retried: .*(UNBLOCKED|NOGROUP)/)
    await bullmq.enqueue(event(2))
    await until(() => runs.length === 2, 'the next event run')
    t.same(runs, [idOf(1), idOf(2)])
  })

  t.test('the received stream\'s reader closed while Redis is down: it closes, without waiting for Redis', async t => {
    const redis = new OwnRedis(await freePort())
    await redis.start()
    t.teardown(async () => { await redis.destroy() })
    const { inbox, connection } = testInbox(t, {}, redis.url)
    const log = { error: () => {}, warn: () => {} } as unknown as FastifyBaseLogger
    const reader = startFanOut(inbox as BullmqInbox, { claimIdle: 30_000, claimInterval: 30_000, log })
    await until(async () => await connection.exists((inbox as BullmqInbox).received) === 1, 'the group made')
    await redis.stop()
    await reader.close()
    t.pass('closed')
  })

  t.test('the app closed while Redis is down, a handler running: the close waits for the handler, then ends without waiting for Redis', async t => {
    const redis = new OwnRedis(await freePort())
    await redis.start()
    t.teardown(async () => { await redis.destroy() })
    // A claim that cannot be refreshed is given up after claimTtl: the handler's success is then not recorded.
    const { inbox } = testInbox(t, { claimTtl: 1000 }, redis.url)
    const held = gate()
    const order: string[] = []
    const app = await appWithInbox(t, inbox, { handlers: { 'min-balance': async () => { await held.pass(); order.push('handler done') } } })
    // Node warns, on the host's stderr, of a timer longer than it can hold: the wait has none.
    const overflows: string[] = []
    const onWarning = (warning: Error): void => { if (warning.name === 'TimeoutOverflowWarning') overflows.push(warning.message) }
    process.on('warning', onWarning)
    t.teardown(() => { process.off('warning', onWarning) })
    t.equal((await postBatch(app, [item(1)])).statusCode, 200)
    await held.reached
    await redis.stop()
    const closed = app.close().then(() => { order.push('closed') })
    await sleep(200)
    t.same(order, [], 'the close waits for the handler')
    held.open()
    await closed
    t.same(order, ['handler done', 'closed'])
    t.same(overflows, [], 'no timer overflowed')
  })

  t.test(`workers fan out no more while ${BACKLOG} events wait: a backlog stays in the stream, and runs once they catch up`, async t => {
    const { inbox } = testInbox(t)
    const bullmq = inbox as BullmqInbox
    await bullmq.connect()
    const events = (from: number): AnyProviderCallbackEvent[] => Array.from({ length: BACKLOG }, (_, i) => ({
      name: 'min-balance', provider: 'voximplant', id: idOf(from + i), receivedAt: new Date(), known: true, payload: {}
    }) as unknown as AnyProviderCallbackEvent)
    for (const from of [0, BACKLOG, 2 * BACKLOG]) await bullmq.enqueue(events(from))
    const held = gate()
    const runs: string[] = []
    const worker = createInboxWorker(inbox, { onAny: async event => { await held.pass(); runs.push(event.id) }, concurrency: 16 })
    t.teardown(async () => {
      held.open()
      await worker.close()
    })
    // The first entry's events, less the 16 running, are under the backlog: the second is fanned out too.
    await until(async () => (await counts(inbox)).waiting === 2 * BACKLOG - 16, 'two entries fanned out')
    await sleep(300)
    t.equal((await counts(inbox)).waiting, 2 * BACKLOG - 16, 'no more jobs')
    t.equal((await received(inbox)).length, 1, 'the third entry waits in the stream')
    held.open()
    await until(() => runs.length === 3 * BACKLOG, 'every event run')
    await fannedOut(inbox)
    // A job is completed once its handler returned: the last one's may still be on its way.
    await until(async () => (await counts(inbox)).completed === 3 * BACKLOG, 'every job completed')
    t.equal(new Set(runs).size, 3 * BACKLOG, 'each once')
    t.same(await counts(inbox), { completed: 3 * BACKLOG, failed: 0, waiting: 0, active: 0, delayed: 0 })
  })

  t.test('an event id again once its window is over: a new job, run again, though completed jobs are kept far longer', async t => {
    // Nothing trims the completed job in the test's time: BullMQ keeps it an hour, as does the worker's cleaner.
    const { inbox } = testInbox(t, { edisWindow: 1000, voximplantWindow: 1000, removeOnComplete: { age: 3600 } })
    const runs: string[] = []
    const app = await appWithInbox(t, inbox)
    app.providerCallbacks.onAny(event => { runs.push(event.id) })
    const edisId = 'edis:kvm_123456_789012:80'
    const send = async (): Promise<number[]> => [
      (await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, authorization: basic(CREDENTIALS.username, CREDENTIALS.password) }, payload: EDIS_BODIES.canonical })).statusCode,
      (await postBatch(app, [item(7)])).statusCode
    ]
    t.same(await send(), [200, 200])
    await until(() => runs.length === 2, 'both run')
    const queue = await (inbox as BullmqInbox).queue()
    const jobs = async (): Promise<Array<{ timestamp: number, finishedOn?: number } | undefined>> => await Promise.all([edisId, idOf(7)].map(async id => await queue.getJob(jobIdOf(id))))
    const [edisJob, voxJob] = await jobs()
    await until(async () => (await jobs()).every(job => job?.finishedOn !== undefined && Date.now() - job.finishedOn > 1100), 'both windows over')

    t.same(await send(), [200, 200])
    await until(() => runs.length === 4, 'both run again', 30_000)
    await fannedOut(inbox)
    await until(async () => (await counts(inbox)).completed === 2, 'both completed')
    t.same(runs.sort(), [edisId, edisId, idOf(7), idOf(7)].sort(), 'each event ran again, once')
    const [edisAgain, voxAgain] = await jobs()
    t.ok(edisAgain!.timestamp > edisJob!.timestamp && voxAgain!.timestamp > voxJob!.timestamp, 'new jobs in place of the old')
    t.same(await counts(inbox), { completed: 2, failed: 0, waiting: 0, active: 0, delayed: 0 }, 'the old jobs removed')
  })

  t.test('an EDIS event redelivered within its window, completed jobs kept: one job, one run', async t => {
    const { inbox } = testInbox(t, { edisWindow: 3_600_000, removeOnComplete: { age: 3600 } })
    const runs: string[] = []
    const app = await appWithInbox(t, inbox)
    app.providerCallbacks.onAny(event => { runs.push(event.id) })
    const send = async (): Promise<number> =>
      (await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, authorization: basic(CREDENTIALS.username, CREDENTIALS.password) }, payload: EDIS_BODIES.canonical })).statusCode
    t.equal(await send(), 200)
    await until(async () => (await counts(inbox)).completed === 1, 'run')
    t.equal(await send(), 200)
    await fannedOut(inbox)
    t.same(await counts(inbox), { completed: 1, failed: 0, waiting: 0, active: 0, delayed: 0 }, 'its fan-out added nothing')
    t.same(runs, ['edis:kvm_123456_789012:80'])
  })

  t.test('an EDIS event: stored without its credentials (body fields or Basic), run with its payload', async t => {
    const { inbox, connection } = testInbox(t)
    const api = await appWithInbox(t, inbox, { worker: false })
    const withFields = await api.inject({
      method: 'POST',
      url: '/callbacks/edis',
      headers: { 'content-type': FORM },
      payload: `${EDIS_BODIES.canonical}&callback_user=${encodeURIComponent(CREDENTIALS.username)}&callback_pw=${encodeURIComponent(CREDENTIALS.password)}`
    })
    t.equal(withFields.statusCode, 200)
    const withBasic = await api.inject({
      method: 'POST',
      url: '/callbacks/edis',
      headers: { 'content-type': FORM, authorization: basic(CREDENTIALS.username, CREDENTIALS.password) },
      payload: EDIS_BODIES.percentTwenty
    })
    t.equal(withBasic.statusCode, 200)
    const queue = await inbox.queue()
    // Everything the queue holds, as Redis holds it: the received stream's entries, then a job per event.
    const stored = async (): Promise<string> => {
      const keys = await connection.keys(`bull:${queue.name}:*`)
      const values = await Promise.all(keys.map(async key => {
        const type = await connection.type(key)
        return type === 'hash' ? await connection.hgetall(key) : type === 'stream' ? await connection.xrange(key, '-', '+') : {}
      }))
      return JSON.stringify(values)
    }
    const checkStored = (text: string, what: string): void => {
      t.match(text, /kvm_123456_789012/, what)
      t.match(text, /kvm_234567_890123/, what)
      t.notMatch(text, /callback_user|callback_pw|pa\$\$|authorization|Basic /i, what)
    }
    checkStored(await stored(), 'received')

    const seen: AnyProviderCallbackEvent[] = []
    const worker = createInboxWorker(inbox, { onAny: event => { seen.push(event) } })
    t.teardown(async () => { await worker.close() })
    await until(() => seen.length === 2, 'both run')
    t.same(Object.keys(await connection.hgetall(`bull:${queue.name}:${jobIdOf('edis:kvm_123456_789012:80')}`)).includes('data'), true, 'a job per event')
    checkStored(await stored(), 'fanned out')
    t.same(seen.map(({ name, provider, id, payload, known }) => ({ name, provider, id, payload, known })).sort((a, b) => a.id < b.id ? -1 : 1), [
      { name: 'traffic-threshold', provider: 'edis', id: 'edis:kvm_123456_789012:80', payload: { kvm: 'kvm_123456_789012', details: 'Traffic usage reached 80%', trigger_value: 80 }, known: true },
      { name: 'traffic-threshold', provider: 'edis', id: 'edis:kvm_234567_890123:95', payload: { kvm: 'kvm_234567_890123', details: 'Traffic usage reached 95%', trigger_value: 95 }, known: true }
    ])
  })

  t.test('a Voximplant type this version does not know: stored, and run by onAny handlers only', async t => {
    const { inbox } = testInbox(t)
    const api = await appWithInbox(t, inbox, { worker: false })
    t.equal((await postBatch(api, [signedItem('brand_new_thing', 7, { brand_new_thing: { x: 1 } })])).statusCode, 200)
    const named: string[] = []
    const any: string[] = []
    const worker = createInboxWorker(inbox, { handlers: { 'min-balance': event => { named.push(event.id) } }, onAny: event => { any.push(`${event.name} ${String(event.known)}`) } })
    t.teardown(async () => { await worker.close() })
    await until(async () => (await counts(inbox)).completed === 1, 'completed')
    t.same(named, [])
    t.same(any, ['brand-new-thing false'])
  })

  t.test('a checked request only: a forged batch is a 401 and stores nothing', async t => {
    const { inbox } = testInbox(t)
    const api = await appWithInbox(t, inbox, { worker: false })
    const response = await postBatch(api, [item(8), { ...item(9), hash: 'forged' }])
    t.equal(response.statusCode, 401)
    t.same(await counts(inbox), { completed: 0, failed: 0, waiting: 0, active: 0, delayed: 0 })
  })

  t.test('a run that finds the event in flight elsewhere: delayed, using up no attempt (attempts 1), and done once that run succeeded', async t => {
    const { inbox, connection, name } = testInbox(t, { attempts: 1, claimTtl: 600 })
    const api = await appWithInbox(t, inbox, { worker: false })
    // Another run holds the claim, as a stalled job's first worker does while it is still at it.
    await connection.set(`${claimPrefix(name)}${idOf(10)}`, 'claim:elsewhere', 'PX', 60_000)
    const failures: string[] = []
    inbox.on('failed', (_event, error) => { failures.push(error.message) })
    const runs: string[] = []
    const worker = createInboxWorker(inbox, { handlers: { 'min-balance': event => { runs.push(event.id) } } })
    t.teardown(async () => { await worker.close() })
    t.equal((await postBatch(api, [item(10)])).statusCode, 200)
    const queue = await inbox.queue() as Queue
    await until(async () => await queue.getJobState(jobIdOf(idOf(10))) === 'delayed', 'a run found it in flight and delayed the job')
    t.equal((await queue.getJob(jobIdOf(idOf(10))))!.attemptsMade, 0, 'no attempt used')
    // That other run succeeded.
    await connection.set(`${claimPrefix(name)}${idOf(10)}`, 'done', 'PX', 60_000)
    await until(async () => (await counts(inbox)).completed === 1, 'completed')
    t.same(runs, [], 'never run here: it was done elsewhere')
    t.same(failures, [], 'no failed run, and so no dead letter with attempts 1')
  })

  t.test('a run whose claim another run took meanwhile: its signal is aborted, its end is not recorded, and the retry finds the event done', async t => {
    const { inbox, connection, name } = testInbox(t, { attempts: 50, backoff: { type: 'fixed', delay: 50 }, claimTtl: 600 })
    const api = await appWithInbox(t, inbox, { worker: false })
    const claim = `${claimPrefix(name)}${idOf(12)}`
    const running = gate()
    let signal: AbortSignal | undefined
    const failures: string[] = []
    inbox.on('failed', (_event, error) => { failures.push(error.message) })
    const worker = createInboxWorker(inbox, {
      handlers: {
        'min-balance': async (_event, _request, context) => {
          signal = context.signal
          await running.pass()
        }
      }
    })
    t.teardown(async () => { await worker.close() })
    t.equal((await postBatch(api, [item(12)])).statusCode, 200)
    await running.reached
    // Another run holds it now, as after this worker was cut off from Redis past claimTtl.
    await connection.set(claim, 'claim:another-run', 'PX', 60_000)
    await until(() => signal?.aborted === true, 'the next refresh found the claim another\'s')
    t.equal(signal?.reason?.code, 'FST_PROVIDER_CALLBACKS_CLAIM_LOST')
    running.open()
    await until(() => failures.length >= 1, 'the run failed')
    t.match(failures[0], /could not be confirmed/)
    t.equal(await connection.get(claim), 'claim:another-run', 'nothing recorded over the other run\'s claim')
    await connection.set(claim, 'done', 'PX', 60_000)
    await until(async () => (await counts(inbox)).completed === 1, 'completed as done')
  })

  t.test('the claim protocol\'s Redis unreachable when a run starts: the job is delayed, using up no attempt (attempts 1), and run once it is back', async t => {
    const { inbox, name, connection } = testInbox(t, { attempts: 1, claimTtl: 600 })
    const api = await appWithInbox(t, inbox, { worker: false })
    t.equal((await postBatch(api, [item(11)])).statusCode, 200)
    // The worker's own fail-fast client (the claims'), not its BullMQ connection nor the inbox's
    // (the fan-out's): the one it duplicates from the host's connection with no offline queue.
    let commands!: Redis
    const duplicate = connection.duplicate.bind(connection)
    connection.duplicate = (override?: RedisOptions) => {
      const client = duplicate(override)
      if (override?.enableOfflineQueue === false) commands = client
      return client
    }
    const failures: string[] = []
    inbox.on('failed', (_event, error) => { failures.push(error.message) })
    const runs: string[] = []
    const probe = await connect()
    t.teardown(() => { probe.disconnect() })
    const claim = `${claimPrefix(name)}${idOf(11)}`
    const worker = createInboxWorker(inbox, { handlers: { 'min-balance': event => { runs.push(event.id) } } })
    t.teardown(async () => { await worker.close() })
    commands.disconnect()
    const queue = await inbox.queue() as Queue
    await until(async () => await queue.getJobState(jobIdOf(idOf(11))) === 'delayed', 'a run could not claim it and delayed the job')
    commands.connect().catch(() => {})
    await until(async () => await probe.get(claim) === 'done', 'run once Redis was back')
    await until(async () => (await counts(inbox)).completed === 1, 'completed')
    t.same(failures, [], 'no failed run')
    t.same(runs, [idOf(11)])
  })

  t.test('a worker without a logger, its first job there as it starts: what needs a human goes to stderr, a line each, with the event id and the error\'s message only, and no claim failed', async t => {
    const { inbox } = testInbox(t, { attempts: 1 })
    const api = await appWithInbox(t, inbox, { worker: false })
    const lines: string[] = []
    const error = console.error
    console.error = (...args: unknown[]) => { lines.push(args.join(' ')) }
    t.teardown(() => { console.error = error })
    // The worker's claims' client (its own fail-fast duplicate) connects a second late, as it may
    // on a busy machine: its first job comes meanwhile, and waits for it rather than fail its claim.
    const { connection } = inbox as BullmqInbox as unknown as { connection: Redis }
    const duplicate = connection.duplicate.bind(connection)
    connection.duplicate = (override?: RedisOptions) => {
      const client = duplicate(override)
      if (override?.enableOfflineQueue === false) {
        const connect = client.connect.bind(client)
        client.connect = async () => { await sleep(1000); await connect() }
      }
      return client
    }
    t.equal((await postBatch(api, [item(13)])).statusCode, 200)
    // eslint-disable-next-line no-throw-literal -- a handler may throw anything: its text is what is logged
    const worker = createInboxWorker(inbox, { handlers: { 'min-balance': () => { throw 'not a ledger of ours' } } })
    t.teardown(async () => { await worker.close() })
    await until(async () => (await counts(inbox)).failed === 1, 'dead-lettered')
    await until(() => lines.length >= 2, 'both lines written')
    t.same(lines, [
      `provider-callbacks inbox error: a 'min-balance' handler failed {"event":"${idOf(13)}","error":"not a ledger of ours"}`,
      `provider-callbacks inbox error: an inbox event is dead-lettered: every attempt failed (1 of 1) {"event":"${idOf(13)}","error":"not a ledger of ours"}`
    ])
  })
})

t.test('Redis unreachable: 503 STORE_UNAVAILABLE with Retry-After, at once; the app still starts', async t => {
  const connection = workerConnection(`redis://127.0.0.1:${await freePort()}`)
  t.teardown(() => { connection.disconnect() })
  const inbox = bullmqInbox({ connection, name: 'unreachable' })
  const app = Fastify()
  await app.register(providerCallbacks, { voximplant: { secret: VOX }, inbox, worker: false })
  t.teardown(async () => { await app.close() })
  const response = await postBatch(app, [item(1)])
  t.equal(response.statusCode, 503)
  t.equal(response.headers['retry-after'], '30')
  t.same(response.json(), { status: 'error', message: 'Callbacks cannot be processed right now; retry later.', code: 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE' })
  const edis = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(edis.statusCode, 404, 'no EDIS route in this app')
  await t.rejects(inbox.failed(), { message: /did not answer within 5000 ms/ }, 'the replay API gives up too')
})
