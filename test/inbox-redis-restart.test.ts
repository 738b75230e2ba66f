// The inbox over a Redis that stops mid-run: a redis-server of this test's own (appendonly,
// appendfsync always, so what it acknowledged survives), never the shared one.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks from '../lib/index.js'
import { gate, postBatch, signedItem, VOX } from './helpers.js'
import { counts, testInbox, until } from './inbox-helpers.js'
import { freePort, OwnRedis, startedOrSkipped } from './redis-helpers.js'

// A redis-server started twice, and the stalled-job check after the restart: room on a busy machine.
t.setTimeout(180_000)

t.test('Redis stopped mid-run: 503s with Retry-After while it is down; every event acknowledged before the stop runs once after it is back', async t => {
  const redis = new OwnRedis(await freePort())
  t.teardown(async () => { await redis.destroy() })
  if (!await startedOrSkipped(t, redis)) return
  // BullMQ's lock and stalled check short: a job whose completion Redis could not take is found again soon after the restart.
  const { inbox } = testInbox(t, { attempts: 30, backoff: { type: 'fixed', delay: 100 }, addTimeout: 1000 }, redis.url)
  const succeeded = new Map<string, number>()
  // The last event acknowledged before the stop is still running when Redis stops, and after.
  const running = gate()
  const last = `voximplant:${VOX.accountId}:40`
  const app = Fastify()
  await app.register(providerCallbacks, {
    voximplant: { secret: VOX },
    inbox,
    worker: { concurrency: 4, lockDuration: 2000, stalledInterval: 1000 },
    handlers: {
      'min-balance': async event => {
        if (event.id === last && !succeeded.has(last)) await running.pass()
        await sleep(20)
        succeeded.set(event.id, (succeeded.get(event.id) ?? 0) + 1)
      }
    }
  })
  t.teardown(async () => { await app.close() })
  await app.ready()

  const acknowledged: string[] = []
  const refused: Array<{ status: number, retryAfter: unknown, code: unknown }> = []
  let id = 0
  const send = async (): Promise<void> => {
    id++
    const response = await postBatch(app, [signedItem('min_balance', id)])
    if (response.statusCode === 200) acknowledged.push(`voximplant:${VOX.accountId}:${id}`)
    else refused.push({ status: response.statusCode, retryAfter: response.headers['retry-after'], code: response.json().code })
  }
  for (let i = 0; i < 40; i++) await send()
  t.same(refused, [], 'all stored while Redis is up')
  await running.reached
  await redis.stop()
  for (let i = 0; i < 5; i++) await send()
  t.same(refused, Array(5).fill({ status: 503, retryAfter: '30', code: 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE' }), 'refused while it is down')
  await redis.start()
  running.open()
  await until(() => acknowledged.every(id => succeeded.has(id)), 'every acknowledged event ran')
  // Some may have been mid-run at the stop: their completion reaches BullMQ after the restart.
  await until(async () => (await counts(inbox)).completed === acknowledged.length, 'every job completed')
  t.equal(acknowledged.length, 40)
  t.same([...succeeded.entries()].filter(([, runs]) => runs !== 1), [], 'none ran twice')
  t.same([...succeeded.keys()].sort(), [...acknowledged].sort(), 'and none refused ran')
  t.same(await inbox.failed(), [])
})

t.test('an app whose worker starts while Redis is down: it gets ready, closes without Redis, and once Redis is up its worker runs the events', async t => {
  const redis = new OwnRedis(await freePort())
  t.teardown(async () => { await redis.destroy() })
  const start = async (): Promise<{ app: ReturnType<typeof Fastify>, inbox: ReturnType<typeof testInbox>['inbox'], runs: string[] }> => {
    // addTimeout short: the app waits that long for Redis before it gets ready without it.
    const { inbox } = testInbox(t, { addTimeout: 500 }, redis.url)
    const runs: string[] = []
    const app = Fastify()
    await app.register(providerCallbacks, {
      voximplant: { secret: VOX },
      inbox,
      worker: { lockDuration: 2000, stalledInterval: 200 },
      handlers: { 'min-balance': event => { runs.push(event.id) } }
    })
    t.teardown(async () => { await app.close() })
    await app.ready()
    return { app, inbox, runs }
  }

  const down = await start()
  t.equal((await postBatch(down.app, [signedItem('min_balance', 1)])).statusCode, 503, 'ready, and answering 503 while Redis is down')
  await down.app.close()
  t.pass('closed while Redis is still down')

  const later = await start()
  if (!await startedOrSkipped(t, redis)) return
  const id = `voximplant:${VOX.accountId}:2`
  // Stored once the inbox's client has reconnected: until then a 503, as the provider would retry.
  await until(async () => (await postBatch(later.app, [signedItem('min_balance', 2)])).statusCode === 200, 'stored once Redis is up')
  await until(() => later.runs.length > 0, 'the worker ran the event')
  await until(async () => (await counts(later.inbox)).completed === 1, 'its job completed')
  t.same(later.runs, [id], 'run once')
  await later.app.close()
})
