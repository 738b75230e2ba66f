// The inbox in the deployments it meets in ordinary operations, over the real Redis: two apps on
// one Redis, a rolling deploy whose old worker lacks a handler, and a migration where replicas
// without the inbox (redisStore) and with it take the same provider's redeliveries.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { bullmqInbox, createInboxWorker, redisStore, type Inbox } from '../lib/index.js'
import { postBatch, signedItem, VOX, voximplantApp } from './helpers.js'
import { counts, removeQueue, testInbox, until, workerConnection } from './inbox-helpers.js'
import { cleanKeys, cleanUp, connect, deleteKeys, redisAvailable } from './redis-helpers.js'

t.setTimeout(120_000)

const idOf = (id: number): string => `voximplant:${VOX.accountId}:${id}`

t.test('with Redis', async t => {
  if (!await redisAvailable(t)) return
  const redis = await connect()
  t.teardown(() => { redis.disconnect() })

  t.test('two apps on one Redis, each with an inbox of its own prefix and the default name: each runs the same event id, once', async t => {
    const runs: string[] = []
    const apps = []
    const prefixes: string[] = []
    for (const side of ['a', 'b']) {
      const prefix = `test-${side}-${randomUUID()}`
      prefixes.push(prefix)
      const connection = workerConnection()
      const inbox = bullmqInbox({ connection, prefix, attempts: 3, backoff: { type: 'fixed', delay: 10 } })
      // The default name, under a prefix of the test's own: never the default keys.
      cleanUp(t, async () => {
        try {
          await removeQueue('provider-callbacks', undefined, prefix)
          await deleteKeys(`${prefix}:`)
        } finally {
          connection.disconnect()
        }
      })
      apps.push({ inbox, app: await voximplantApp(t, { inbox, handlers: { 'min-balance': event => { runs.push(`${side} ${event.id}`) } } }) })
    }
    for (const { app } of apps) t.equal((await postBatch(app, [signedItem('min_balance', 1)])).statusCode, 200)
    for (const { inbox } of apps) await until(async () => (await counts(inbox)).completed === 1, 'the job completed')
    t.same(runs.sort(), [`a ${idOf(1)}`, `b ${idOf(1)}`], 'each app ran its own')
    for (const prefix of prefixes) {
      t.equal(await redis.get(`${prefix}:provider-callbacks:provider-callbacks:${idOf(1)}`), 'done', 'each done record under its inbox\'s prefix and name')
    }
  })

  t.test('a rolling deploy: an old worker without a handler for a type does not mark its event done; the new worker runs it, once', async t => {
    const { inbox } = testInbox(t, { attempts: 50, backoff: { type: 'fixed', delay: 50 } })
    const failures: string[] = []
    inbox.on('failed', (_event, error) => { failures.push(error.message) })
    const api = await voximplantApp(t, { inbox, worker: false })
    const runs: string[] = []
    const old = createInboxWorker(inbox, { handlers: { 'min-balance': event => { runs.push(`old ${event.name}`) } } })
    t.teardown(async () => { await old.close() })
    t.equal((await postBatch(api, [signedItem('min_balance', 2), signedItem('js_fail', 3)])).statusCode, 200)
    await until(() => failures.length >= 2, 'the old worker refused the js-fail event twice')
    t.match(failures[0], /no handler for 'js-fail' in this worker/)
    t.same(runs, ['old min-balance'])
    t.same(await counts(inbox).then(({ completed }) => completed), 1, 'only the event it could run is completed')

    const current = createInboxWorker(inbox, {
      handlers: { 'min-balance': event => { runs.push(`new ${event.name}`) }, 'js-fail': event => { runs.push(`new ${event.name}`) } }
    })
    t.teardown(async () => { await current.close() })
    await old.close()
    await until(async () => (await counts(inbox)).completed === 2, 'the new worker ran the js-fail event')
    t.same(runs, ['old min-balance', 'new js-fail'], 'each event ran once, the js-fail one by the new worker')
    t.same(await inbox.failed(), [])
  })

  t.test('a handlers map missing a type, attempts used up: the event is a dead letter that says why, and runs once replayed to a worker that has a handler', async t => {
    const { inbox } = testInbox(t, { attempts: 2, backoff: { type: 'fixed', delay: 10 } })
    const api = await voximplantApp(t, { inbox, worker: false })
    const exhausted: string[] = []
    const partial = createInboxWorker(inbox, { handlers: { 'min-balance': () => {} } })
    partial.on('exhausted', (event, error) => { exhausted.push(`${event.id}: ${error.message}`) })
    t.equal((await postBatch(api, [signedItem('js_fail', 4)])).statusCode, 200)
    await until(async () => (await counts(inbox)).failed === 1, 'dead-lettered')
    await partial.close()
    const [dead] = await inbox.failed()
    t.same({ id: dead?.event.id, attempts: dead?.attempts, error: dead?.error }, { id: idOf(4), attempts: 2, error: 'no handler for \'js-fail\' in this worker' })
    t.same(exhausted, [`${idOf(4)}: no handler for 'js-fail' in this worker`])
    const runs: string[] = []
    const full = createInboxWorker(inbox, { handlers: { 'js-fail': event => { runs.push(event.id) } } })
    t.teardown(async () => { await full.close() })
    t.equal(await inbox.retry(idOf(4)), true)
    await until(async () => (await counts(inbox)).completed === 1, 'the replay completed')
    t.same(runs, [idOf(4)], 'not recorded done by the worker that had no handler: run once replayed')
  })

  t.test('a migration: a replica without the inbox (redisStore) and one with it, sharing claimPrefix, run a redelivered event once', async t => {
    const prefix = cleanKeys(t, `test-migration-${randomUUID()}:`)
    const runs: string[] = []
    const handlers = { 'min-balance': (event: { id: string }) => { runs.push(event.id) } }
    const { inbox } = testInbox(t, { claimPrefix: prefix })
    const store = await connect()
    t.teardown(() => { store.disconnect() })
    const syncReplica = await voximplantApp(t, { idempotency: { store: redisStore(store, { prefix }) }, handlers })
    const inboxReplica = await voximplantApp(t, { inbox, handlers })
    // Delivered to the old replica, then redelivered to the new one; and the other way round.
    t.equal((await postBatch(syncReplica, [signedItem('min_balance', 5)])).statusCode, 200)
    t.equal((await postBatch(inboxReplica, [signedItem('min_balance', 5), signedItem('min_balance', 6)])).statusCode, 200)
    await until(async () => (await counts(inbox)).completed === 2, 'both inbox jobs completed')
    t.equal((await postBatch(syncReplica, [signedItem('min_balance', 6)])).statusCode, 200)
    t.same(runs, [idOf(5), idOf(6)], 'each event ran once, whichever kind of replica it reached first')
    t.equal(await redis.get(`${prefix}${idOf(5)}`), 'done', 'one done record for both kinds of replica')
  })

  t.test('claimPrefix must be a non-empty string', async t => {
    const connection = workerConnection()
    t.teardown(() => { connection.disconnect() })
    for (const claimPrefix of ['', 7]) {
      t.throws(() => bullmqInbox({ connection, claimPrefix: claimPrefix as string }), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /claimPrefix must be a non-empty string/ })
    }
    const inbox: Inbox = bullmqInbox({ connection, name: 'test-inbox-deploys-claim-prefix' })
    await inbox.close()
  })
})
