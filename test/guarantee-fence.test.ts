// A success that outlived its claim is never recorded: complete is fenced by the owner (in the
// store, in the same step as the write) and by the claim's own deadline, read once the handlers
// settle. A replica frozen past claimTtl (a GC pause, SIGSTOP, a synchronous handler) or whose
// refresh never landed answers 503 and logs the lost claim; the record is the other replica's.
import { randomUUID } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import providerCallbacks, {
  createInboxWorker, memoryStore, redisStore, type IdempotencyStore, type Inbox, type ProviderCallbacksOptions
} from '../lib/index.js'
import { EDIS_BODIES, fakeClock, FORM, gate, postBatch, signedItem, VOX } from './helpers.js'
import { claimPrefix, counts, testInbox, until } from './inbox-helpers.js'
import { cleanKeys, connect, countCommands, REDIS_URL, redisAvailable, type TestClient } from './redis-helpers.js'

t.setTimeout(120_000)

const EDIS_ID = 'edis:kvm_123456_789012:80'
const LOST = 'lost the claim on an event'
const postEdis = (app: FastifyInstance) => app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })

type Line = Record<string, unknown>
/** A replica: an app on `store`, its log lines kept (warn and up). */
async function replica (t: Test, store: IdempotencyStore, idempotency: Record<string, unknown> = {}, options: Partial<ProviderCallbacksOptions> = {}): Promise<{ app: FastifyInstance, lines: Line[] }> {
  const lines: Line[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  await app.register(providerCallbacks, { edis: {}, handlerTimeout: false, ...options, idempotency: { store, ...idempotency } })
  await app.ready()
  t.teardown(() => app.close())
  return { app, lines }
}

const lostLine = (lines: Line[]): Line | undefined => lines.find(line => line.level === 50 && String(line.msg).startsWith(LOST))

/** Waits until `post` is answered 200: the claim it found in flight expired, and it ran the event. */
async function untilDelivered (post: () => Promise<{ statusCode: number }>): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const { statusCode } = await post()
    if (statusCode === 200) return
    if (statusCode !== 409 || Date.now() > deadline) throw new Error(`expected 409 until 200, got ${statusCode}`)
    await sleep(20)
  }
}

/**
 * Replicas A and B on `store`: A's handler is held while its claim (60 s) runs out, B then takes
 * and runs the event (its window 60 s), and A's handler ends: A answers 503 and logs the lost
 * claim. Only Date moves, so A's refresh timer (every 20 s of real time) never runs, as in a
 * frozen process. The clock is the caller's, to look at the records afterwards.
 */
async function frozenWhileAnotherRan (t: Test, store: IdempotencyStore): Promise<ReturnType<typeof fakeClock>> {
  const a = await replica(t, store, { claimTtl: 60_000 })
  const b = await replica(t, store, { claimTtl: 60_000, edisWindow: 60_000 })
  const clock = fakeClock(t, ['Date'])
  const slow = gate()
  const runs: string[] = []
  a.app.providerCallbacks.on('traffic-threshold', async () => { runs.push('A'); await slow.pass() })
  b.app.providerCallbacks.on('traffic-threshold', () => { runs.push('B') })
  const first = postEdis(a.app)
  await slow.reached
  t.equal((await postEdis(b.app)).statusCode, 409, 'in flight while A\'s claim lasts')
  clock.tick(60_001)
  t.equal((await postEdis(b.app)).statusCode, 200)
  slow.open()
  t.equal((await first).statusCode, 503)
  t.same(runs, ['A', 'B'])
  t.match(lostLine(a.lines), { event: EDIS_ID, msg: /settled after the claim expired/ })
  return clock
}

t.test('redisStore, two replicas on one Redis', async t => {
  if (!await redisAvailable(t)) return
  const client = await connect()
  t.teardown(() => { client.disconnect() })

  // Replica A's store: redisStore with its refresh replaced; replica B's: redisStore as it is.
  const replicas = async (t: Test, refresh: IdempotencyStore['refresh'], claimTtl: number) => {
    const prefix = cleanKeys(t, `guarantee-fence:${randomUUID()}:`)
    const store = redisStore(client as never, { prefix })
    // Different windows tell whose done record the key is: A's a day, B's a minute.
    const a = await replica(t, { ...store, refreshMany: undefined, refresh }, { claimTtl, edisWindow: 24 * 3600_000 })
    const b = await replica(t, store, { claimTtl, edisWindow: 60_000 })
    return { a, b, key: prefix + EDIS_ID }
  }

  t.test('A\'s refresh never lands (withheld): A outlives its claim, B runs the event; A records nothing, answers 503, logs the lost claim', async t => {
    const { a, b, key } = await replicas(t, () => new Promise<never>(() => {}), 400)
    const slow = gate()
    const runs: string[] = []
    a.app.providerCallbacks.on('traffic-threshold', async () => { runs.push('A'); await slow.pass() })
    b.app.providerCallbacks.on('traffic-threshold', () => { runs.push('B') })
    const first = postEdis(a.app)
    await slow.reached
    await untilDelivered(async () => await postEdis(b.app))
    t.equal(await client.get(key), 'done')
    slow.open()
    const late = await first
    t.equal(late.statusCode, 503)
    t.equal(late.json().code, 'FST_PROVIDER_CALLBACKS_CLAIM_LOST')
    t.same(runs, ['A', 'B'])
    t.ok(await client.pttl(key) <= 60_000, 'the done record is B\'s (its window), not rewritten by A')
    t.match(lostLine(a.lines), { event: EDIS_ID }, 'A logged the lost claim with the event id')
    t.equal((await postEdis(b.app)).statusCode, 200, 'a redelivery finds it done')
    t.same(runs, ['A', 'B'])
  })

  t.test('A\'s refresh answered but lost (a Redis failover dropped the write): A thinks its claim live; the fenced complete finds B\'s record, A answers 503', async t => {
    // Long enough that A's own deadline, refreshed every third of it, stays ahead on a busy machine.
    const { a, b, key } = await replicas(t, () => true, 1200)
    const slow = gate()
    const runs: string[] = []
    a.app.providerCallbacks.on('traffic-threshold', async () => { runs.push('A'); await slow.pass() })
    b.app.providerCallbacks.on('traffic-threshold', () => { runs.push('B') })
    const first = postEdis(a.app)
    await slow.reached
    await untilDelivered(async () => await postEdis(b.app))
    // A's deadline is still ahead: its last refresh, about 400 ms ago at most, was answered true.
    slow.open()
    const late = await first
    t.equal(late.statusCode, 503)
    t.same(runs, ['A', 'B'])
    t.equal(await client.get(key), 'done')
    t.ok(await client.pttl(key) <= 60_000, 'the done record is B\'s')
    t.match(lostLine(a.lines), { event: EDIS_ID, msg: /gone or another delivery's when recording/ })
  })

  t.test('complete over a key that is not the owner\'s claim records nothing and answers false; a batch answers each key, in one round trip', async t => {
    const prefix = cleanKeys(t, `guarantee-fence:${randomUUID()}:`)
    const { client: counted, count } = countCommands(client as TestClient)
    const store = redisStore(counted as never, { prefix })
    t.same(await store.claimMany(['mine', 'other', 'done'].map(key => ({ key, owner: 'a' })), 60_000), ['claimed', 'claimed', 'claimed'])
    await client.set(prefix + 'other', 'claim:b', 'PX', 60_000)
    await client.set(prefix + 'done', 'done', 'PX', 5_000)
    count.reset()
    const answers = await Promise.all(['mine', 'other', 'gone', 'done'].map(async key => await store.complete(key, 'a', 60_000)))
    t.same(answers, [true, false, false, false])
    t.same(count.commands, [{ name: 'eval', keys: 4 }], 'one script over the four keys')
    t.same([await client.get(prefix + 'mine'), await client.get(prefix + 'other'), await client.get(prefix + 'gone'), await client.get(prefix + 'done')], ['done', 'claim:b', null, 'done'])
    t.ok(await client.pttl(prefix + 'done') <= 5_000, 'a done key not rewritten')
  })
})

t.test('memoryStore, two replicas on one store', async t => {
  t.test('A frozen past its claimTtl (the clock moved, no refresh ran): B runs the event; A records nothing, answers 503, logs the lost claim', async t => {
    const store = memoryStore()
    const clock = await frozenWhileAnotherRan(t, store)
    t.equal(store.claim(EDIS_ID, 'probe', 1000), 'done', 'B\'s record stands')
    clock.tick(60_001)
    t.equal(store.claim(EDIS_ID, 'probe', 1000), 'claimed', 'with B\'s window, not A\'s day: A recorded nothing')
  })

  t.test('A\'s refresh answered without extending: the fenced complete finds B\'s record, A answers 503', async t => {
    const store = memoryStore()
    const a = await replica(t, { ...store, refresh: () => true }, { claimTtl: 60_000 })
    const b = await replica(t, store, { claimTtl: 60_000 })
    const clock = fakeClock(t, ['Date', 'setInterval'])
    const slow = gate()
    const runs: string[] = []
    a.app.providerCallbacks.on('traffic-threshold', async () => { runs.push('A'); await slow.pass() })
    b.app.providerCallbacks.on('traffic-threshold', () => { runs.push('B') })
    const first = postEdis(a.app)
    await slow.reached
    // A's refreshes run, and A extends its deadline; the store's claim expires all the same.
    for (let i = 0; i < 4; i++) clock.tick(20_000)
    t.equal((await postEdis(b.app)).statusCode, 200)
    slow.open()
    t.equal((await first).statusCode, 503)
    t.same(runs, ['A', 'B'])
    t.match(lostLine(a.lines), { event: EDIS_ID, msg: /gone or another delivery's when recording/ })
    t.equal(store.complete(EDIS_ID, 'nobody', 1000), false, 'a done key is nobody\'s claim')
  })

  t.test('a synchronous handler longer than claimTtl: never held nor refreshed, yet its success is not recorded (503, logged)', async t => {
    const store = memoryStore()
    const a = await replica(t, store, { claimTtl: 50 })
    const runs: number[] = []
    a.app.providerCallbacks.on('traffic-threshold', () => {
      const until = Date.now() + 80
      while (Date.now() < until);
      runs.push(1)
    })
    t.equal((await postEdis(a.app)).statusCode, 503)
    t.match(lostLine(a.lines), { event: EDIS_ID })
    t.equal(store.claim(EDIS_ID, 'probe', 1000), 'claimed', 'not done: the redelivery runs it')
  })

  t.test('a batch\'s items: one that outlived the claims is lost, the others are recorded', async t => {
    const store = memoryStore()
    const a = await replica(t, store, { claimTtl: 50 }, { voximplant: { secret: VOX } })
    a.app.providerCallbacks.on('min-balance', event => {
      if (!event.id.endsWith(':2')) return
      const until = Date.now() + 80
      while (Date.now() < until);
    })
    const res = await postBatch(a.app, [signedItem('min_balance', 1), signedItem('min_balance', 2), signedItem('min_balance', 3)])
    t.equal(res.statusCode, 503)
    const id = (n: number): string => `voximplant:${VOX.accountId}:${n}`
    t.equal(store.claim(id(1), 'probe', 1000), 'done')
    t.equal(store.claim(id(2), 'probe', 1000), 'claimed', 'the slow item is not done')
    t.equal(store.claim(id(3), 'probe', 1000), 'claimed', 'nor the one after it, which ran past the batch\'s claims too')
  })
})

/** A third party's store whose complete records done without checking the owner, and answers nothing. */
function unfencedStore (): { store: IdempotencyStore, done: (key: string) => boolean } {
  const keys = new Map<string, { value: string, expires: number }>()
  const live = (key: string): { value: string } | undefined => {
    const entry = keys.get(key)
    return entry !== undefined && entry.expires > Date.now() ? entry : undefined
  }
  const store: IdempotencyStore = {
    claim: (key, owner, ttl) => {
      const entry = live(key)
      if (entry !== undefined) return entry.value === 'done' ? 'done' : 'in-flight'
      keys.set(key, { value: owner, expires: Date.now() + ttl })
      return 'claimed'
    },
    complete: (key, _owner, ttl) => { keys.set(key, { value: 'done', expires: Date.now() + ttl }) },
    release: (key, owner) => { if (live(key)?.value === owner) keys.delete(key) }
  }
  return { store, done: key => live(key)?.value === 'done' }
}

t.test('a store whose complete does not check the owner: the claim\'s own deadline still keeps a late success from being recorded', async t => {
  t.test('two replicas: A frozen past its claimTtl while B ran the event; A answers 503 and does not rewrite B\'s record', async t => {
    const { store, done } = unfencedStore()
    const clock = await frozenWhileAnotherRan(t, store)
    clock.tick(60_001)
    t.equal(done(EDIS_ID), false, 'B\'s record, with B\'s window, was the only one: A wrote none with its day')
  })

  t.test('a synchronous handler longer than claimTtl: 503, nothing recorded', async t => {
    const { store, done } = unfencedStore()
    const a = await replica(t, store, { claimTtl: 50 })
    a.app.providerCallbacks.on('traffic-threshold', () => {
      const until = Date.now() + 80
      while (Date.now() < until);
    })
    t.equal((await postEdis(a.app)).statusCode, 503)
    t.equal(done(EDIS_ID), false)
  })
})

t.test('the record retried after a failed complete', async t => {
  t.test('then answered not-ours: lost, 503, logged, nothing recorded', async t => {
    const inner = memoryStore()
    let fails = 1
    const store: IdempotencyStore = {
      ...inner,
      complete: (key, owner, ttl) => {
        if (fails-- > 0) throw new Error('store down')
        // Meanwhile another delivery took the key.
        inner.release(key, owner)
        inner.claim(key, 'other', 60_000)
        return inner.complete(key, owner, ttl)
      }
    }
    const a = await replica(t, store, { claimTtl: 3000 })
    a.app.providerCallbacks.on('traffic-threshold', () => {})
    t.equal((await postEdis(a.app)).statusCode, 503)
    t.match(lostLine(a.lines), { event: EDIS_ID, msg: /gone or another delivery's when recording/ })
    t.equal(inner.claim(EDIS_ID, 'probe', 1000), 'in-flight', 'the other delivery\'s claim stands')
  })

  t.test('past the claim\'s deadline with no refresh landed (withheld): lost, even though the store takes the next complete', async t => {
    const inner = memoryStore()
    let downUntil: number | undefined
    let late = false
    const store: IdempotencyStore = {
      ...inner,
      refresh: () => new Promise<never>(() => {}),
      complete: (key, owner, ttl) => {
        // Down until the claim is well past its ttl, then up: a complete that late may not be recorded.
        downUntil ??= Date.now() + 150
        if (Date.now() < downUntil) throw new Error('store down')
        late = true
        inner.claim(key, owner, 60_000)
        return inner.complete(key, owner, ttl)
      }
    }
    const a = await replica(t, store, { claimTtl: 90 })
    a.app.providerCallbacks.on('traffic-threshold', () => {})
    t.equal((await postEdis(a.app)).statusCode, 503)
    t.match(lostLine(a.lines), { event: EDIS_ID, msg: /settled after the claim expired/ })
    t.equal(late, false, 'the late complete was never sent')
  })
})

/** A worker's logger that keeps its error and warn lines. */
function workerLogger (): { logger: FastifyBaseLogger, lines: Array<{ level: string, event?: string, msg: string }> } {
  const lines: Array<{ level: string, event?: string, msg: string }> = []
  const line = (level: string) => (fields: { event?: string }, msg: string): void => { lines.push({ level, event: fields.event, msg }) }
  return { logger: { error: line('error'), warn: line('warn') } as unknown as FastifyBaseLogger, lines }
}

/** An API replica of `inbox`'s, and the messages of the runs that failed, as they fail. */
async function apiReplica (t: Test, inbox: Inbox): Promise<{ api: FastifyInstance, failures: string[] }> {
  const api = Fastify()
  await api.register(providerCallbacks, { voximplant: { secret: VOX }, inbox, worker: false })
  t.teardown(() => api.close())
  const failures: string[] = []
  inbox.on('failed', (_event, error) => { failures.push(error.message) })
  return { api, failures }
}

/**
 * The late run failed (ClaimLostError), logged why, and wrote nothing over the other run's claim;
 * once that run succeeded, the retry completes the job as done.
 */
async function lateRunRefused (t: Test, run: { inbox: Inbox, connection: Redis, claim: string, failures: string[], lines: Array<{ level: string, event?: string, msg: string }>, id: number, why: RegExp }): Promise<void> {
  const { inbox, connection, claim, failures, lines } = run
  await until(() => failures.length >= 1, 'the late run failed')
  t.match(failures[0], /could not be confirmed/)
  t.match(lines, [{ level: 'error', event: `voximplant:${VOX.accountId}:${run.id}`, msg: run.why }])
  t.equal(await connection.get(claim), 'claim:another-run', 'nothing recorded over the other run\'s claim')
  await connection.set(claim, 'done', 'PX', 60_000)
  await until(async () => (await counts(inbox)).completed === 1, 'completed as done')
}

t.test('the inbox', async t => {
  if (!await redisAvailable(t)) return

  t.test('a run frozen past claimTtl while another run took the event: its end is not recorded (ClaimLostError), and the retry finds it done', async t => {
    const { inbox, connection, name } = testInbox(t, { attempts: 50, backoff: { type: 'fixed', delay: 50 }, claimTtl: 300 })
    const { api, failures } = await apiReplica(t, inbox)
    const claim = `${claimPrefix(name)}voximplant:${VOX.accountId}:20`
    let runs = 0
    const { logger, lines } = workerLogger()
    const worker = createInboxWorker(inbox, {
      logger,
      handlers: {
        'min-balance': async () => {
          runs++
          if (runs > 1) return
          // Frozen: nothing of this process runs (no refresh) until the claim expired in Redis; then
          // another run takes the event (redis-cli, as another worker would, while this one is frozen).
          const until = Date.now() + 450
          while (Date.now() < until);
          spawnSync('redis-cli', ['-u', REDIS_URL, 'SET', claim, 'claim:another-run', 'PX', '60000'])
        }
      }
    })
    t.teardown(async () => { await worker.close() })
    t.equal((await postBatch(api, [signedItem('min_balance', 20)])).statusCode, 200)
    await lateRunRefused(t, { inbox, connection, claim, failures, lines, id: 20, why: /^lost the claim on an event: its handlers settled after the claim expired/ })
    t.equal(runs, 1, 'the retry did not run it: the other run had')
  })

  t.test('a run whose claim another run took, settling before any refresh saw it: the fenced complete records nothing (ClaimLostError)', async t => {
    const { inbox, connection, name } = testInbox(t, { attempts: 50, backoff: { type: 'fixed', delay: 50 }, claimTtl: 60_000 })
    const { api, failures } = await apiReplica(t, inbox)
    const claim = `${claimPrefix(name)}voximplant:${VOX.accountId}:21`
    const running = gate()
    let runs = 0
    const { logger, lines } = workerLogger()
    const worker = createInboxWorker(inbox, { logger, handlers: { 'min-balance': async () => { runs++; if (runs === 1) await running.pass() } } })
    t.teardown(async () => { await worker.close() })
    t.equal((await postBatch(api, [signedItem('min_balance', 21)])).statusCode, 200)
    await running.reached
    // The claim expired (this run's worker stalled) and another run took it; the refresh timer
    // (every 20 s) has not run since.
    await connection.set(claim, 'claim:another-run', 'PX', 60_000)
    running.open()
    await lateRunRefused(t, { inbox, connection, claim, failures, lines, id: 21, why: /^lost the claim on an event: the store found the claim gone/ })
    t.equal(runs, 1)
  })
})
