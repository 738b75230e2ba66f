// A batch against a real Redis costs a constant number of round trips, whatever its size: its
// claims go out together, and so do the records of the items whose handlers settled together.
// Counted through a wrapped client (a proxy of a real ioredis 5 or 6 client), never a mock.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import providerCallbacks, { redisStore } from '../lib/index.js'
import { gate, postBatch, signedItem, VOX } from './helpers.js'
import { cleanKeys, connect, countCommands, IOREDIS_MAJORS, REDIS_URL, redisAvailable, type IoredisMajor } from './redis-helpers.js'

t.setTimeout(60_000)
const secret = { apiKey: VOX.apiKey, salt: VOX.salt }
const idOf = (callbackId: number): string => `voximplant:${VOX.accountId}:${callbackId}`
let nextId = Math.floor(Math.random() * 1e9)

async function setup (t: Test, major: IoredisMajor, claimTtl = 30_000) {
  const direct = await connect(REDIS_URL, major)
  const { client, count } = countCommands(await connect(REDIS_URL, major))
  const prefix = cleanKeys(t, `batch-redis:${randomUUID()}:`)
  const app = Fastify()
  await app.register(providerCallbacks, { voximplant: { secret }, idempotency: { store: redisStore(client, { prefix }), claimTtl }, handlerTimeout: false })
  t.teardown(async () => {
    await app.close()
    client.disconnect()
    direct.disconnect()
  })
  return { app, count, get: async (id: string) => await direct.get(prefix + id), direct, prefix }
}

for (const major of IOREDIS_MAJORS) {
  t.test(`ioredis ${major}: a batch of 1, 10 or 100 takes two round trips (claims, then records), and a redelivery one`, async t => {
    if (!await redisAvailable(t)) return
    const { app, count, get } = await setup(t, major)
    const runs: string[] = []
    app.providerCallbacks.onAny(async event => {
      // Every other handler settles on a later turn of the loop: the records still go out together.
      if (runs.push(event.id) % 2 === 0) await null
    })
    for (const size of [1, 10, 100]) {
      const ids = Array.from({ length: size }, () => ++nextId)
      const batch = ids.map(id => signedItem('min_balance', id))
      count.reset()
      t.equal((await postBatch(app, batch)).statusCode, 200)
      t.ok(count.roundTrips <= 3, `batch of ${size}: ${count.roundTrips} round trips (at most 3)`)
      t.equal(count.roundTrips, 2, `batch of ${size}: the claims, then the records`)
      t.same(runs.slice(-size), ids.map(idOf), 'every item ran, in order')
      t.same(await Promise.all(ids.map(id => get(idOf(id)))), ids.map(() => 'done'), 'and is recorded as done')
      t.ok(count.commands.every(c => c.name === 'eval'), 'scripts only')
      t.equal(count.commands.reduce((keys, c) => keys + c.keys, 0), 2 * size, 'one claim and one record per item')

      count.reset()
      t.equal((await postBatch(app, batch)).statusCode, 200, 'redelivered: acknowledged')
      t.equal(count.roundTrips, 1, `batch of ${size} redelivered: one round trip, the claims that find them done`)
      t.equal(runs.length, [1, 10, 100].filter(s => s <= size).reduce((a, b) => a + b), 'and nothing ran again')
    }
  })

  t.test(`ioredis ${major}: a batch with done, in-flight, failing and fresh items: one claim round trip tells them apart; the failed item is released`, async t => {
    if (!await redisAvailable(t)) return
    const { app, count, get, direct, prefix } = await setup(t, major)
    const [done, busy, failing, fresh] = [++nextId, ++nextId, ++nextId, ++nextId]
    await direct.set(prefix + idOf(done), 'done', 'PX', 60_000)
    await direct.set(prefix + idOf(busy), 'claim:another-replica', 'PX', 60_000)
    const runs: number[] = []
    app.providerCallbacks.onAny(event => {
      const id = (event.payload as { callback_id: number }).callback_id
      runs.push(id)
      if (id === failing) throw new Error('handler failed')
    })
    count.reset()
    const res = await postBatch(app, [done, busy, failing, fresh].map(id => signedItem('card_payment', id)))
    t.equal(res.statusCode, 500, 'a failed item makes a 500, once every item had its turn')
    t.same(runs, [failing, fresh], 'neither the done nor the in-flight item ran')
    t.equal(count.roundTrips, 2)
    t.same(count.commands.map(c => c.keys), [4, 1, 1], 'four claims in one script; then the release and the record, sent together')
    t.equal(await get(idOf(failing)), null, 'the failed item\'s claim is released')
    t.equal(await get(idOf(fresh)), 'done')
    t.equal(await get(idOf(busy)), 'claim:another-replica', 'the other replica\'s claim is left alone')
  })

  t.test(`ioredis ${major}: while an item runs, the claims of the items waiting behind it are held, all refreshed in one script per tick`, async t => {
    if (!await redisAvailable(t)) return
    const claimTtl = 600
    const { app, count } = await setup(t, major, claimTtl)
    const ids = Array.from({ length: 10 }, () => ++nextId)
    const slow = gate()
    app.providerCallbacks.onAny(async event => { if (event.id === idOf(ids[0]!)) await slow.pass() })
    const answer = postBatch(app, ids.map(id => signedItem('min_balance', id)))
    await slow.reached
    count.reset()
    // Two ttls of the claims pass: only refreshes keep them.
    await sleep(2 * claimTtl)
    const refreshes = count.commands.filter(c => c.name === 'eval')
    t.ok(refreshes.length >= 2, `refreshed ${refreshes.length} times`)
    t.same(refreshes.map(c => c.keys), refreshes.map(() => 10), 'each time every held claim, in one script')
    t.equal((await postBatch(app, [signedItem('min_balance', ids[9]!)])).statusCode, 409, 'the last item, still waiting its turn, is in flight for a redelivery')
    slow.open()
    t.equal((await answer).statusCode, 200)
  })
}
