// The PostgreSQL test helpers: what a test makes on the shared server is its own and gone after it,
// and a server of a test's own stops and starts again keeping its data, and leaves nothing behind.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import pg from 'pg'
import t from 'tap'
import { TYPESCRIPT_NODE_ARGS } from './helpers.js'
import { leftoverSchemas, ownPostgres, postgresAvailable, testSchema } from './pg-helpers.js'

// initdb and three starts of a server, and a file run in a process of its own: room on a busy machine.
t.setTimeout(180_000)

async function query (url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.query(sql)
  } finally {
    await client.end().catch(() => {})
  }
}

async function portFree (port: number): Promise<boolean> {
  const server = createServer()
  return await new Promise(resolve => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

t.test('testSchema: a table made without a schema lands in the test\'s own, which is dropped when the test ends', async t => {
  if (!await postgresAvailable(t)) return
  let made: { pool: pg.Pool, schema: string } | undefined
  await t.test('a test with a schema', async t => {
    made = await testSchema(t)
    const { pool, schema } = made
    t.match(schema, /^pct_[0-9a-f]{12}$/, 'named for leftoverSchemas to find')
    await pool.query('create table events (id text primary key)')
    await pool.query('insert into events values (\'a\')')
    const { rows } = await pool.query(`select n.nspname as schema, current_schema() as current, current_setting('search_path') as path
      from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = 'events'::regclass`)
    t.same(rows, [{ schema, current: schema, path: schema }], 'the only schema its sessions see')
    t.ok((await leftoverSchemas()).includes(schema), 'listed while the test runs')
  })
  t.ok(made?.pool.ended, 'its pool is ended')
  t.notOk((await leftoverSchemas()).includes(String(made?.schema)), 'its schema is gone')
})

t.test('a failing test file leaves nothing behind: a teardown that threw, a client never released, a test that threw', async t => {
  if (!await postgresAvailable(t)) return
  const run = await new Promise<{ code: number | null, stdout: string, stderr: string }>(resolve => {
    const child = execFile(process.execPath, [...TYPESCRIPT_NODE_ARGS, 'test/fixtures/pg-failing.ts'], { encoding: 'utf8', timeout: 120_000 }, (_error, stdout, stderr) => {
      resolve({ code: child.exitCode, stdout, stderr })
    })
  })
  t.not(run.code, 0, 'the file failed')
  // tap reports a teardown that threw after its test ended on stdout or stderr, depending on what failed before.
  const output = run.stdout + run.stderr
  t.match(output, /an earlier teardown threw/, 'the teardown threw')
  t.match(output, /testSchema: the pool on pct_[0-9a-f]{12} did not end in 5 s/, 'the client never released is reported')
  t.match(output, /the test failed/, 'the test on its own server failed')
  const made = (what: string): string[] => [...run.stderr.matchAll(new RegExp(`^${what} (.+)$`, 'gm'))].map(([, value]) => String(value))
  const schemas = [...made('schema'), ...made('unreleased')]
  t.equal(schemas.length, 2, 'both schemas made', { output })
  const left = await leftoverSchemas()
  t.same(schemas.filter(schema => left.includes(schema)), [], 'both dropped')
  const [server] = made('server')
  if (server === undefined) {
    t.comment('!!! SKIPPED: the file had no server of its own')
    return
  }
  const [port, dir] = server.split(' ')
  t.notOk(existsSync(String(dir)), 'its server\'s folder is gone')
  t.ok(await portFree(Number(port)), 'its server\'s port is free')
})

t.test('OwnPostgres: a row written before a stop is there after a start; closed, its port is free and its folder gone', async t => {
  const postgres = await ownPostgres(t, { max_connections: 20 })
  if (postgres === undefined) return
  t.match(postgres.url, new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:${postgres.port}/postgres$`))
  const { rows: [settings] } = await query(postgres.url, `select current_setting('listen_addresses') as listen, current_setting('unix_socket_directories') as sockets,
    current_setting('fsync') as fsync, current_setting('max_connections') as max, current_user as user`)
  t.same(settings, { listen: '127.0.0.1', sockets: postgres.dir, fsync: 'off', max: '20', user: 'postgres' }, 'its own socket folder, never the machine server\'s')
  await query(postgres.url, 'create table kept (id int primary key)')
  await query(postgres.url, 'insert into kept values (1)')

  const held = new pg.Client({ connectionString: postgres.url })
  held.on('error', () => {})
  await held.connect()
  await postgres.stop('immediate')
  t.notOk(await postgres.running(), 'stopped')
  await t.rejects(held.query('select 1'), 'a session open across the stop fails')
  await held.end().catch(() => {})
  await t.rejects(query(postgres.url, 'select 1'), { code: 'ECONNREFUSED' }, 'nothing listens while it is stopped')
  await postgres.start()
  t.same((await query(postgres.url, 'select id from kept')).rows, [{ id: 1 }], 'kept across a crash (immediate)')

  await query(postgres.url, 'insert into kept values (2)')
  await postgres.stop()
  await postgres.start()
  t.same((await query(postgres.url, 'select id from kept order by id')).rows, [{ id: 1 }, { id: 2 }], 'kept across a clean stop (fast)')

  await postgres.close()
  t.notOk(existsSync(postgres.dir), 'its folder is gone')
  t.ok(await portFree(postgres.port), 'its port is free')
  await postgres.close() // what the teardown does again
})
