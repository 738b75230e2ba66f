// An inbox on PostgreSQL for a test: in a schema of its own, dropped when the test ends.
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import pg from 'pg'
import type { Test } from 'tap'
import providerCallbacks, { postgresInbox, type Inbox, type PostgresInboxOptions, type ProviderCallbacksOptions } from '../lib/index.js'
import { CREDENTIALS, VOX } from './helpers.js'
import { PG_URL, SCHEMA_PREFIX } from './pg-helpers.js'
import { cleanUp } from './redis-helpers.js'

/** Fast retries, so that a test's failing runs take milliseconds. */
export const FAST = { attempts: 3, backoff: { type: 'fixed', delay: 10 } } satisfies Partial<PostgresInboxOptions>

export interface PgInbox {
  inbox: Inbox
  /** A pool whose sessions see the inbox's schema: for the tests' own tables. */
  pool: pg.Pool
  schema: string
  /** What must close before the schema goes (apps, workers): closed in the reverse order. */
  before: (close: () => Promise<void>) => void
}

/**
 * An inbox in a schema of its own (BullMQ's tables and the claims), on the shared server or `url`,
 * dropped when the test ends, after whatever `before` was given and the inbox closed.
 */
export function pgInbox (t: Test, options: Partial<PostgresInboxOptions> = {}, url = PG_URL): PgInbox {
  const schema = `${SCHEMA_PREFIX}${randomBytes(6).toString('hex')}`
  const inbox = postgresInbox({ connection: { connectionString: url, schema, application_name: schema }, name: 'test', ...FAST, ...options })
  const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, application_name: schema, connectionTimeoutMillis: 5000 })
  pool.on('error', () => {})
  const closing: Array<() => Promise<void>> = []
  cleanUp(t, async () => {
    for (const close of closing.reverse()) await close().catch(() => {})
    await inbox.close()
    await pool.end().catch(() => {})
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()', [schema])
      await client.query(`drop schema if exists ${schema} cascade`)
    } catch {} finally {
      await client.end().catch(() => {})
    }
  })
  return { inbox, pool, schema, before: close => { closing.push(close) } }
}

export async function appWithInbox (t: Test, { inbox, before }: PgInbox, options: Partial<ProviderCallbacksOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  before(async () => { await app.close() })
  await app.register(providerCallbacks, { voximplant: { secret: VOX }, edis: { credentials: CREDENTIALS }, inbox, ...options })
  return app
}
