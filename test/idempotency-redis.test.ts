// The multi-replica guarantee, against a real Redis (127.0.0.1:6379, or REDIS_URL): every event's
// handlers succeed exactly once, whatever the concurrency, redeliveries, failures, a replica that
// dies mid-handler, or Redis itself going away for a while. Replicas run ioredis 5 and 6 side by
// side (as in a rolling upgrade from one to the other), so every scenario drives both majors; the
// store's own protocol is checked on each of them alone.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import providerCallbacks, { redisStore, type IdempotencyOptions } from '../lib/index.js'
import { FORM, signedItem, TYPESCRIPT_NODE_ARGS, VOX } from './helpers.js'
import { cleanKeys, connect, freePort, IOREDIS_MAJORS, type IoredisMajor, OwnRedis, REDIS_URL, redisAvailable, seededRandom, startedOrSkipped } from './redis-helpers.js'

const secret = { apiKey: VOX.apiKey, salt: VOX.salt }
// About 11 s on a quiet 2-core machine (a replica process among them); this budget lets it finish
// with other work on the CPU, and still ends a run that hangs.
t.setTimeout(90_000)
const SEED = Number(process.env.SEED ?? Date.now() % 1_000_000)

interface Replica { app: FastifyInstance, close: () => Promise<void> }

/** A replica: an app with the plugin on a Redis store of its own client (of that ioredis major), sharing `prefix`. */
async function replica (major: IoredisMajor, url: string, prefix: string, idempotency: IdempotencyOptions, onEvent: (id: string) => Promise<void>): Promise<Replica> {
  const client = await connect(url, major)
  const app = Fastify()
  await app.register(providerCallbacks, {
    edis: {},
    voximplant: { secret },
    idempotency: { ...idempotency, store: redisStore(client, { prefix }) }
  })
  app.providerCallbacks.onAny(event => onEvent(event.id))
  return { app, close: async () => { await app.close(); client.disconnect() } }
}

type Delivery = { url: string, headers: Record<string, string>, payload: string }

function voximplantDelivery (callbacks: unknown[]): Delivery {
  return { url: '/callbacks/voximplant', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ callbacks }) }
}

/** Delivers to a random replica until one accepts it, as a provider retries; returns every status seen. */
async function deliverUntilAccepted (replicas: Replica[], delivery: Delivery, random: () => number): Promise<number[]> {
  const statuses: number[] = []
  for (let attempt = 0; attempt < 500; attempt++) {
    const target = replicas[Math.floor(random() * replicas.length)]!
    const res = await target.app.inject({ method: 'POST', ...delivery })
    statuses.push(res.statusCode)
    if (res.statusCode === 200) return statuses
    if (![409, 500, 503].includes(res.statusCode)) throw new Error(`unexpected ${res.statusCode}: ${res.body}`)
    if (res.statusCode !== 500 && res.headers['retry-after'] === undefined) throw new Error('a 409 or 503 without Retry-After')
    await sleep(5 + random() * 25)
  }
  throw new Error(`not accepted after 500 attempts: ${statuses.join(',')}`)
}

/** Handlers that take a random while and fail a fraction of the time; successes counted per event. */
function flakyHandler (random: () => number, failureRate: number) {
  const successes = new Map<string, number>()
  const handler = async (id: string): Promise<void> => {
    await sleep(random() * 15)
    if (random() < failureRate) throw new Error('flaky handler')
    successes.set(id, (successes.get(id) ?? 0) + 1)
  }
  return { successes, handler }
}

function batches (random: () => number, events: number, firstId: number, largest: number): unknown[][] {
  const all = Array.from({ length: events }, (_, i) => signedItem(['min_balance', 'card_payment', 'sms_inbound'][i % 3]!, firstId + i))
  const result: unknown[][] = []
  while (all.length > 0) result.push(all.splice(0, 1 + Math.floor(random() * largest)))
  return result
}

t.test('two replicas (ioredis 5 and 6), one Redis: hundreds of concurrent redeliveries, each event succeeds once', async t => {
  if (!await redisAvailable(t)) return
  t.comment(`seed ${SEED} (SEED=${SEED} repeats this run)`)
  const random = seededRandom(SEED)
  const prefix = cleanKeys(t, `test:${randomUUID()}:`)
  const { successes, handler } = flakyHandler(random, 0.25)
  const idempotency = { claimTtl: 2000, edisWindow: 60_000, voximplantWindow: 60_000 }
  const replicas = await Promise.all(IOREDIS_MAJORS.map(major => replica(major, REDIS_URL, prefix, idempotency, handler)))
  t.teardown(async () => { for (const r of replicas) await r.close() })

  const voxBatches = batches(random, 240, 1, 8)
  const edisIds = Array.from({ length: 60 }, (_, i) => `kvm_${100000 + i}_1`)
  const deliveries: Delivery[] = [
    ...voxBatches.map(voximplantDelivery),
    ...edisIds.map(kvm => ({ url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `kvm=${kvm}&details=Traffic+usage+reached+90%25&trigger_value=90` }))
  ]
  // Every batch and callback is delivered three times, concurrently, to random replicas.
  const statuses = (await Promise.all([...deliveries, ...deliveries, ...deliveries].map(d => deliverUntilAccepted(replicas, d, random)))).flat()

  const expected = [
    ...voxBatches.flat().map(item => `voximplant:${VOX.accountId}:${(item as { callback_id: number }).callback_id}`),
    ...edisIds.map(kvm => `edis:${kvm}:90`)
  ]
  t.equal(expected.length, 300)
  const counts = expected.map(id => successes.get(id) ?? 0)
  t.same([...new Set(counts)], [1], 'every one of the 300 events succeeded exactly once')
  t.equal(successes.size, 300, 'and no other')
  t.ok(statuses.includes(500), 'handlers failed along the way (and were retried)')
  t.ok(statuses.includes(409), 'replicas met the same event in flight')
  t.comment(`${statuses.length} answers: ${[200, 409, 500].map(s => `${statuses.filter(x => x === s).length}x${s}`).join(', ')}`)
})

t.test('a replica (ioredis 5) that dies mid-handler: after its claim expires, the redelivery runs once elsewhere (ioredis 6)', async t => {
  if (!await redisAvailable(t)) return
  const prefix = cleanKeys(t, `test:${randomUUID()}:`)
  // Long enough that the living replica's refreshes (every ttl / 3) survive a stall of a second.
  const claimTtl = 1500
  // The fixture connects with redis-helpers' default client, ioredis 5; the survivor runs ioredis 6.
  const child = spawn(process.execPath, [...TYPESCRIPT_NODE_ARGS, 'test/fixtures/replica.ts'], {
    env: { ...process.env, REDIS_URL, PREFIX: prefix, CLAIM_TTL: String(claimTtl), VOX_API_KEY: secret.apiKey, VOX_SALT: secret.salt },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const port = Number((await lines.next()).value.split(' ')[1])

  const runs: string[] = []
  const survivor = await replica(6, REDIS_URL, prefix, { claimTtl }, async id => { runs.push(id) })
  t.teardown(() => survivor.close())
  const client = await connect()
  t.teardown(() => client.disconnect())
  const claim = `${prefix}voximplant:${VOX.accountId}:4242`

  const delivery = voximplantDelivery([signedItem('min_balance', 4242)])
  fetch(`http://127.0.0.1:${port}${delivery.url}`, { method: 'POST', headers: delivery.headers, body: delivery.payload }).catch(() => {})
  t.equal((await lines.next()).value, `started voximplant:${VOX.accountId}:4242`)
  // Alive, the dying replica refreshes its claim: its expiry moves later, which only a refresh
  // does. Three refreshes are a whole ttl's worth, and the survivor must still wait.
  let refreshes = 0
  let left = await client.pttl(claim)
  while (refreshes < 3 && left > 0) {
    await sleep(claimTtl / 10)
    const now = await client.pttl(claim)
    if (now > left) refreshes++
    left = now
  }
  t.equal(refreshes, 3, 'the living replica kept its claim past one ttl')
  t.equal((await survivor.app.inject({ method: 'POST', ...delivery })).statusCode, 409, 'held while its replica lives')
  child.kill('SIGKILL')
  await once(child, 'exit')

  const statuses = await deliverUntilAccepted([survivor], delivery, Math.random)
  t.ok(statuses.slice(0, -1).every(s => s === 409), 'refused as in flight until the claim expired')
  t.same(runs, [`voximplant:${VOX.accountId}:4242`], 'the survivor ran it once')
  t.equal((await survivor.app.inject({ method: 'POST', ...delivery })).statusCode, 200)
  t.equal(runs.length, 1, 'and never again')
})

t.test('Redis stopped mid-run under replicas on ioredis 5 and 6: 503s meanwhile, and once it is back nothing is lost or doubled', async t => {
  if (!await redisAvailable(t)) return
  const own = new OwnRedis(await freePort())
  t.teardown(() => own.destroy())
  await own.start()
  const random = seededRandom(SEED + 1)
  const prefix = 'test:'
  const { successes, handler } = flakyHandler(random, 0.1)
  const idempotency = { claimTtl: 5000, voximplantWindow: 60_000 }
  const replicas = await Promise.all(IOREDIS_MAJORS.map(major => replica(major, own.url, prefix, idempotency, handler)))
  t.teardown(async () => { for (const r of replicas) await r.close() })

  const voxBatches = batches(random, 150, 10_000, 5)
  let accepted = 0
  const run = Promise.all([...voxBatches, ...voxBatches].map(async (batch, i) => {
    await sleep(i * 8)
    const statuses = await deliverUntilAccepted(replicas, voximplantDelivery(batch), random)
    accepted++
    return statuses
  }))
  while (accepted < voxBatches.length / 2) await sleep(5)
  await own.stop()
  t.comment(`Redis stopped after ${accepted} accepted deliveries`)
  await sleep(600)
  await own.start()
  const statuses = (await run).flat()

  t.ok(statuses.includes(503), 'requests while Redis was down were answered 503')
  const ids = voxBatches.flat().map(item => `voximplant:${VOX.accountId}:${(item as { callback_id: number }).callback_id}`)
  t.same([...new Set(ids.map(id => successes.get(id) ?? 0))], [1], `all ${ids.length} events succeeded exactly once`)
  t.equal(successes.size, ids.length)
})

for (const major of IOREDIS_MAJORS) {
  t.test(`redisStore keeps the protocol on ioredis ${major}: SET NX PX claims, owners, done, expiry`, async t => {
    if (!await redisAvailable(t)) return
    const client = await connect(REDIS_URL, major)
    t.teardown(() => client.disconnect())
    // ioredis 6 negotiates RESP3, in which a SET NX that finds the key answers RESP3's null.
    const resp = major === 6 ? 3 : 2
    t.match(await client.call('CLIENT', 'INFO'), new RegExp(`\\bresp=${resp}\\b`), `ioredis ${major} speaks RESP${resp}`)
    const prefix = cleanKeys(t, `test:${randomUUID()}:`)
    const store = redisStore(client, { prefix })
    t.equal(await store.claim('e', 'one', 60_000), 'claimed')
    t.equal(await store.claim('e', 'two', 60_000), 'in-flight')
    t.equal(await client.get(`${prefix}e`), 'claim:one', 'keys carry the prefix')
    await store.release('e', 'two')
    t.equal(await store.claim('e', 'two', 60_000), 'in-flight', 'another owner cannot release it')
    // refresh's answer is the script's integer as the client decodes it (RESP2 or RESP3).
    t.equal(await store.refresh!('e', 'one', 120_000), true, 'the owner\'s refresh says it still holds the claim')
    t.ok(await client.pttl(`${prefix}e`) > 60_000, 'and extends it')
    t.equal(await store.refresh!('e', 'two', 1), false, 'another owner\'s says it does not')
    t.ok(await client.pttl(`${prefix}e`) > 60_000, 'and leaves it alone')
    await store.release('e', 'one')
    t.equal(await store.claim('e', 'two', 200), 'claimed', 'released by its owner: free')
    await sleep(250)
    t.equal(await store.claim('e', 'three', 200), 'claimed', 'an expired claim is free')
    await store.complete('e', 'three', 60_000)
    t.equal(await store.claim('e', 'four', 200), 'done')
    t.ok(await client.pttl(`${prefix}e`) > 50_000, 'done is kept for the window')
  })

  t.test(`redisStore on ioredis ${major} keys its claims under 'provider-callbacks:' by default`, async t => {
    // The default prefix is a user's own app's: shown on a redis-server of the test's own, never the shared one.
    const own = new OwnRedis(await freePort())
    t.teardown(() => own.destroy())
    if (!await startedOrSkipped(t, own)) return
    const client = await connect(own.url, major)
    t.teardown(() => client.disconnect())
    const defaults = redisStore(client)
    t.equal(await defaults.claim('x', 'o', 1000), 'claimed')
    t.equal(await client.get('provider-callbacks:x'), 'claim:o', 'the default prefix')
  })
}
