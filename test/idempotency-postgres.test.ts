// postgresStore's claim protocol and its transactions, against the real PostgreSQL (127.0.0.1:5432,
// or PG_URL), each test in a schema of its own: what a claim finds, that only the owner's claim is
// refreshed, recorded or dropped, that the done mark commits with the handlers' writes or not at
// all, and that the table comes into being however many replicas start at once.
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { postgresStore, postgresStoreSchema } from '../lib/index.js'
import { PG_URL, postgresAvailable, testSchema } from './pg-helpers.js'

t.setTimeout(120_000)

t.test('claim, refresh, complete and release: the owner alone, and the window', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const store = postgresStore(pool)
  t.equal(await store.claim('k', 'a', 60_000), 'claimed')
  t.equal(await store.claim('k', 'b', 60_000), 'in-flight', 'another owner finds it running')
  t.equal(await store.refresh('k', 'b', 60_000), false, 'another owner cannot extend it')
  t.equal(await store.refresh('k', 'a', 60_000), true)
  t.equal(await store.complete('k', 'b', 60_000), false, 'another owner cannot record it')
  await store.release('k', 'b')
  t.equal(await store.claim('k', 'c', 60_000), 'in-flight', 'another owner\'s release leaves it claimed')
  t.equal(await store.complete('k', 'a', 300), true)
  t.equal(await store.claim('k', 'd', 60_000), 'done')
  t.equal(await store.refresh('k', 'a', 60_000), false, 'a done mark is not a claim')
  await store.release('k', 'a')
  t.equal(await store.claim('k', 'd', 60_000), 'done', 'a release does not undo a done mark')
  await sleep(400)
  t.equal(await store.claim('k', 'e', 60_000), 'claimed', 'past its window the key is free again')

  t.equal(await store.claim('r', 'a', 60_000), 'claimed')
  await store.release('r', 'a')
  t.equal(await store.claim('r', 'b', 60_000), 'claimed', 'released, the key is free at once')
})

t.test('a prefix: two users of one table never share an event, in every method', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const [one, two] = [postgresStore(pool, { prefix: 'one:' }), postgresStore(pool, { prefix: 'two:' })]
  t.equal(await one.claim('k', 'a', 60_000), 'claimed')
  t.same(await two.claimMany([{ key: 'k', owner: 'b' }, { key: 'j', owner: 'b' }], 60_000), ['claimed', 'claimed'], 'the other prefix\'s k is another key')
  t.same(await two.refreshMany([{ key: 'k', owner: 'b' }], 60_000), [true])
  t.equal(await one.refresh('k', 'a', 60_000), true)
  const transaction = await two.begin()
  t.equal(await transaction.commit('k', 'b', 60_000), true)
  t.equal(await one.complete('k', 'a', 60_000), true)
  await two.release('j', 'b')
  const { rows } = await pool.query('SELECT key, done FROM provider_callbacks_events ORDER BY key')
  t.same(rows, [{ key: 'one:k', done: true }, { key: 'two:k', done: true }])
  t.throws(() => postgresStore(pool, { prefix: 1 as never }), /prefix must be a string, got 1/)
})

t.test('an expired claim: taken by the next claim, and its owner can neither extend nor record it', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const store = postgresStore(pool)
  t.equal(await store.claim('k', 'a', 200), 'claimed')
  await sleep(300)
  t.equal(await store.refresh('k', 'a', 60_000), false)
  t.equal(await store.complete('k', 'a', 60_000), false, 'a success that outlived its claim is not recorded')
  t.equal(await store.claim('k', 'b', 60_000), 'claimed')
  t.equal(await store.complete('k', 'a', 60_000), false)
  t.equal(await store.complete('k', 'b', 60_000), true)
})

t.test('claimMany and refreshMany: one statement for a batch, in the order given, a repeated key claimed once', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const store = postgresStore(pool)
  await store.claim('running', 'x', 60_000)
  await store.claim('finished', 'y', 60_000)
  await store.complete('finished', 'y', 60_000)
  const answers = await store.claimMany([
    { key: 'new', owner: 'a' }, { key: 'running', owner: 'b' }, { key: 'finished', owner: 'c' }, { key: 'new', owner: 'd' }
  ], 60_000)
  t.same(answers, ['claimed', 'in-flight', 'done', 'in-flight'])
  t.same(await store.refreshMany([{ key: 'new', owner: 'a' }, { key: 'running', owner: 'b' }, { key: 'running', owner: 'x' }, { key: 'finished', owner: 'y' }], 60_000),
    [true, false, true, false])
  t.same(await store.claimMany([{ key: 'again', owner: 'a' }, { key: 'again', owner: 'a' }], 60_000), ['claimed', 'claimed'], 'the same owner twice holds it')
})

t.test('a transaction: the handlers\' writes and the done mark commit together, or neither does', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  await pool.query('CREATE TABLE effects (event text NOT NULL)')
  const store = postgresStore(pool)
  const effects = async (): Promise<string[]> => (await pool.query('SELECT event FROM effects ORDER BY event')).rows.map(row => row.event)

  await store.claim('ok', 'a', 60_000)
  const ok = await store.begin()
  await ok.tx.query('INSERT INTO effects VALUES ($1)', ['ok'])
  t.same(await effects(), [], 'not visible before the commit')
  t.equal(await ok.commit('ok', 'a', 60_000), true)
  t.same(await effects(), ['ok'])
  t.equal(await store.claim('ok', 'b', 60_000), 'done')

  await store.claim('stolen', 'a', 200)
  const stolen = await store.begin()
  await stolen.tx.query('INSERT INTO effects VALUES ($1)', ['stolen by a'])
  await sleep(300)
  t.equal(await store.claim('stolen', 'b', 60_000), 'claimed', 'the claim lapsed and another run took it')
  t.equal(await stolen.commit('stolen', 'a', 60_000), false, 'the first run\'s commit is refused')
  t.same(await effects(), ['ok'], 'and its write rolled back')
  t.equal(await store.claim('stolen', 'c', 60_000), 'in-flight', 'the other run still holds it')

  await store.claim('lapsed', 'a', 200)
  const lapsed = await store.begin()
  await lapsed.tx.query('INSERT INTO effects VALUES ($1)', ['lapsed'])
  await sleep(300)
  t.equal(await lapsed.commit('lapsed', 'a', 60_000), true, 'lapsed, but nobody took it: this run is the event\'s only one')
  t.same(await effects(), ['lapsed', 'ok'])

  await store.claim('back', 'a', 60_000)
  const back = await store.begin()
  await back.tx.query('INSERT INTO effects VALUES ($1)', ['back'])
  await back.rollback()
  await back.rollback()
  t.same(await effects(), ['lapsed', 'ok'], 'rolled back')

  await store.claim('broken', 'a', 60_000)
  const broken = await store.begin()
  await broken.tx.query('INSERT INTO effects VALUES ($1)', ['broken'])
  await t.rejects(broken.tx.query('SELECT * FROM no_such_table'))
  await t.rejects(broken.commit('broken', 'a', 60_000), /aborted/, 'a statement that failed aborted the transaction: the commit says so')
  t.same(await effects(), ['lapsed', 'ok'])
  t.equal(await store.claim('broken', 'b', 60_000), 'in-flight', 'the claim is the caller\'s to release')
  t.equal(pool.totalCount, pool.idleCount, 'every client went back to the pool (or was closed)')
})

t.test('another run\'s claim waits for a transaction that wrote the done mark, then finds the event done', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const store = postgresStore(pool)
  await store.claim('k', 'a', 200)
  const transaction = await store.begin()
  await sleep(300)
  // The done mark written, not yet committed: the row is locked until COMMIT.
  const marked = await transaction.tx.query('UPDATE provider_callbacks_events SET done = true, owner = NULL, expires_at = now() + interval \'1 minute\' WHERE key = $1 AND owner = $2', ['k', 'a'])
  t.equal(marked.rowCount, 1)
  const other = store.claim('k', 'b', 60_000)
  const first = await Promise.race([other, sleep(300, 'waiting')])
  t.equal(first, 'waiting', 'the expired claim is not taken while its run commits')
  await transaction.tx.query('COMMIT')
  transaction.tx.release()
  t.equal(await other, 'done')
})

t.test('the table: made on first use by replicas starting together, in the schema asked for, or by a migration', async t => {
  if (!await postgresAvailable(t)) return
  const { pool, schema } = await testSchema(t)
  const stores = Array.from({ length: 4 }, () => postgresStore(pool, { table: 'claims', schema }))
  t.same(await Promise.all(stores.map((store, i) => store.claim('k', `o${i}`, 60_000))).then(all => all.sort()), ['claimed', 'in-flight', 'in-flight', 'in-flight'])
  const { rows } = await pool.query('SELECT table_schema FROM information_schema.tables WHERE table_name = $1', ['claims'])
  t.same(rows, [{ table_schema: schema }])

  const migrated = postgresStore(pool, { table: 'migrated', createTable: false })
  await t.rejects(migrated.claim('k', 'a', 60_000), /relation "migrated" does not exist/, 'createTable: false makes no table')
  const sql = postgresStoreSchema({ table: 'migrated' })
  t.match(sql, /CREATE TABLE IF NOT EXISTS "migrated"/)
  await pool.query(sql)
  t.equal(await migrated.claim('k', 'a', 60_000), 'claimed', 'the documented migration makes the table it uses')
  t.match(postgresStoreSchema(), /"provider_callbacks_events"/)
  t.match(postgresStoreSchema({ schema: 'app' }), /"app"\."provider_callbacks_events"/)
})

t.test('a database out of reach: claims, transactions and releases reject', async t => {
  if (!await postgresAvailable(t)) return
  const down = new pg.Pool({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 500 })
  t.teardown(async () => { await down.end() })
  const store = postgresStore(down)
  await t.rejects(store.claim('k', 'a', 1000), /ECONNREFUSED/)
  await t.rejects(store.begin(), /ECONNREFUSED/)
  await t.rejects(store.release('k', 'a'), /ECONNREFUSED/)
})

t.test('prune deletes what expired, nothing live', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const store = postgresStore(pool)
  await store.claim('claim-expired', 'a', 100)
  await store.claim('done-expired', 'a', 60_000)
  await store.complete('done-expired', 'a', 100)
  await store.claim('claim-live', 'a', 60_000)
  await store.claim('done-live', 'a', 60_000)
  await store.complete('done-live', 'a', 60_000)
  await sleep(200)
  t.equal(await store.prune(), 2)
  const { rows } = await pool.query('SELECT key FROM provider_callbacks_events ORDER BY key')
  t.same(rows.map(row => row.key), ['claim-live', 'done-live'])
})

t.test('options: names that are identifiers, a pool that is one', async t => {
  const pool = new pg.Pool()
  t.teardown(async () => { await pool.end() })
  t.throws(() => postgresStore(pool, { table: 'x; DROP TABLE y' }), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /table must be a plain SQL identifier/ })
  t.throws(() => postgresStore(pool, { schema: '' }), /schema must be a plain SQL identifier/)
  t.throws(() => postgresStore({} as never), /pool must be a node-postgres Pool/)
  t.throws(() => postgresStore(undefined as never), /pool must be a node-postgres Pool/)
})

t.test('a connection that dies: BEGIN rejects and the client is closed; a rollback on it still ends the transaction', async t => {
  if (!await postgresAvailable(t)) return
  const { pool } = await testSchema(t)
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  t.teardown(async () => { await admin.end() })
  const kill = async (client: pg.PoolClient): Promise<void> => {
    await admin.query('SELECT pg_terminate_backend($1)', [(client as unknown as { processID: number }).processID])
  }
  // The pool's own clients, each killed by the server at the moment the test chooses.
  const dying = { query: pool.query.bind(pool), connect: async () => { const client = await pool.connect(); await kill(client); return client } }
  const store = postgresStore(dying)
  await store.claim('k', 'a', 60_000)
  await t.rejects(store.begin(), /terminat|Connection/i)

  const live = postgresStore(pool)
  const transaction = await live.begin()
  await kill(transaction.tx as pg.PoolClient)
  await transaction.rollback()
  t.equal(pool.totalCount, pool.idleCount, 'no client is left checked out')
  const { rows } = await pool.query('SELECT 1 AS up')
  t.same(rows, [{ up: 1 }], 'and the pool goes on with new connections')
})
