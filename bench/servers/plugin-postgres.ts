// The plugin with postgresStore, transactional (exactly-once effects), over node-postgres (PG_URL,
// default postgres://root@127.0.0.1:5432/test): every event is claimed, its handler (the same
// no-op counter as the other servers') runs inside a transaction, and the done mark commits in it.
// Its table lives in a schema of this process's own, dropped when it closes; the windows are short.
import pg from 'pg'
import { postgresStore } from '../../lib/index.js'
import { servePlugin } from './plugin-app.js'

const url = process.env.PG_URL ?? 'postgres://root@127.0.0.1:5432/test'
const schema = `bench_${process.pid}`
const admin = new pg.Client({ connectionString: url })
await admin.connect()
await admin.query(`CREATE SCHEMA ${schema}`)
// node-postgres's default of 10 connections, as a host would start with.
const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 1000 })
pool.on('error', () => {})
const tenMinutes = 10 * 60 * 1000

await servePlugin({
  store: postgresStore(pool, { schema }),
  transactional: true,
  edisWindow: tenMinutes,
  voximplantWindow: tenMinutes
}, async () => {
  await pool.end()
  await admin.query(`DROP SCHEMA ${schema} CASCADE`)
  await admin.end()
})
