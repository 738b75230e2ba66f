// redisStore on a real Redis Cluster of three masters, which this test starts on ports of its own.
// A script's keys must share a hash slot, and a batch's event ids spread over all of them: on a
// Cluster every key is its own script, all sent at once (ioredis routes each to its node), so a
// batch still takes a constant number of round trips.
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { Cluster } from 'ioredis'
import { Cluster as Cluster6 } from 'ioredis6'
import t from 'tap'
import providerCallbacks, { redisStore } from '../lib/index.js'
import { postBatch, signedItem, VOX } from './helpers.js'
import { CLIENT_OPTIONS, countCommands, IOREDIS_MAJORS, ownCluster } from './redis-helpers.js'

// Starting three nodes and joining them takes a few seconds; room for a busy machine.
t.setTimeout(120_000)
const secret = { apiKey: VOX.apiKey, salt: VOX.salt }
const idOf = (callbackId: number): string => `voximplant:${VOX.accountId}:${callbackId}`

t.test('a Redis Cluster of three nodes, through ioredis 5 and 6 Cluster clients: batches are claimed, recorded and deduplicated, in two round trips', async t => {
  const cluster = await ownCluster(t)
  if (cluster === undefined) return
  const nodes = cluster.ports.map(port => ({ host: '127.0.0.1', port }))
  for (const major of IOREDIS_MAJORS) {
    const options = { redisOptions: CLIENT_OPTIONS, enableOfflineQueue: false, lazyConnect: true }
    const raw = major === 6 ? new Cluster6(nodes, options) : new Cluster(nodes, options)
    raw.on('error', () => {})
    await raw.connect()
    t.teardown(() => { raw.disconnect() })
    t.equal(raw.isCluster, true)
    const { client, count } = countCommands(raw)
    const prefix = `cluster:${randomUUID()}:`
    const app = Fastify()
    await app.register(providerCallbacks, { voximplant: { secret }, idempotency: { store: redisStore(client, { prefix }) } })
    t.teardown(() => app.close())
    const runs: string[] = []
    app.providerCallbacks.onAny(event => { runs.push(event.id) })

    const ids = Array.from({ length: 30 }, (_, i) => 1000 * major + i)
    const batch = ids.map(id => signedItem('min_balance', id))
    count.reset()
    t.equal((await postBatch(app, batch)).statusCode, 200, `ioredis ${major}`)
    t.same(runs, ids.map(idOf), 'every item ran, in order')
    t.equal(count.roundTrips, 2, 'the claims, then the records, each all at once')
    t.same(count.commands.map(c => c.keys), ids.flatMap(() => [1, 1]), 'a script per key: a script\'s keys must share a slot')
    t.same(await Promise.all(ids.map(async id => await raw.get(prefix + idOf(id)))), ids.map(() => 'done'), 'each recorded as done')
    // The keys are spread over the three nodes, so the batch went to all of them.
    const slots = await Promise.all(ids.map(async id => await raw.call('CLUSTER', 'KEYSLOT', prefix + idOf(id)) as number))
    const owners = new Set(slots.map(slot => (raw.slots[slot] ?? [])[0]))
    t.equal(owners.size, 3, 'the batch\'s keys live on all three nodes')

    count.reset()
    t.equal((await postBatch(app, batch)).statusCode, 200, 'redelivered: acknowledged')
    t.equal(runs.length, ids.length, 'nothing ran twice')
    t.equal(count.roundTrips, 1, 'one round trip: the claims find them done')

    // Key by key on a Cluster too, complete is fenced: only the owner's own claim becomes done.
    const store = redisStore(client, { prefix })
    const [mine, theirs] = [`fence-${major}-a`, `fence-${major}-b`]
    t.same(await store.claimMany([{ key: mine, owner: 'a' }, { key: theirs, owner: 'b' }], 60_000), ['claimed', 'claimed'])
    t.same(await Promise.all([store.refresh(mine, 'a', 60_000), store.refresh(theirs, 'a', 60_000)]), [true, false])
    t.same(await Promise.all([store.complete(mine, 'a', 60_000), store.complete(theirs, 'a', 60_000)]), [true, false], 'another owner\'s claim is not recorded over')
    await store.release(theirs, 'b')
    t.same([await raw.get(prefix + mine), await raw.get(prefix + theirs)], ['done', null])
  }
})
