import { InvalidOptionError } from '../errors.js'
import type { ClaimResult, KeyOwner, StoreTransaction, TransactionalStore } from './store.js'

/** What the store reads of a query's result (node-postgres's `QueryResult`). */
export interface PostgresResult {
  rows: any[]
  rowCount: number | null
}

/** A client checked out of the pool: node-postgres's `PoolClient`, or one with its methods. */
export interface PostgresClientLike {
  query(text: string, values?: unknown[]): Promise<PostgresResult>
  /** Back to the pool; with an error, the connection is closed instead (its state is unknown). */
  release(error?: Error | boolean): void
}

/**
 * The part of a node-postgres `Pool` the store uses. The host creates, owns and ends the pool;
 * give it a `connectionTimeoutMillis` (and a `query_timeout`), so that a PostgreSQL that is down
 * makes requests fail fast (503) rather than wait.
 */
export interface PostgresPoolLike {
  query(text: string, values?: unknown[]): Promise<PostgresResult>
  connect(): Promise<PostgresClientLike>
}

export interface PostgresStoreOptions {
  /** The table of claims and done marks. Default `'provider_callbacks_events'`. */
  table?: string
  /** Its schema. Default: the connection's search_path (`public`). */
  schema?: string
  /** Prefix of every key the store writes, so that two users of one table never share an event. Default `''`. */
  prefix?: string
  /**
   * Create the table (and its index) on first use, if it is not there. Default `true`; `false`
   * when migrations create it (`postgresStoreSchema()` gives the SQL).
   */
  createTable?: boolean
}

/** The PostgreSQL store: every method of the claim protocol, batches in one statement, and transactions. */
export interface PostgresStore extends TransactionalStore<PostgresClientLike> {
  claim(key: string, owner: string, ttl: number): Promise<ClaimResult>
  claimMany(claims: readonly KeyOwner[], ttl: number): Promise<ClaimResult[]>
  refresh(key: string, owner: string, ttl: number): Promise<boolean>
  refreshMany(claims: readonly KeyOwner[], ttl: number): Promise<boolean[]>
  complete(key: string, owner: string, ttl: number): Promise<boolean>
  release(key: string, owner: string): Promise<void>
  /** Deletes the rows that expired (done marks past their window, claims of dead processes); how many. */
  prune(): Promise<number>
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/

function identifier (name: unknown, what: string): string {
  // A name, not SQL: the table's name goes into every statement.
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) {
    throw new InvalidOptionError(`postgresStore: ${what} must be a plain SQL identifier (letters, digits, _ and $, at most 63), got ${JSON.stringify(name)}`)
  }
  return `"${name}"`
}

function tableOf (options: PostgresStoreOptions): string {
  const table = identifier(options.table ?? 'provider_callbacks_events', 'table')
  return options.schema === undefined ? table : `${identifier(options.schema, 'schema')}.${table}`
}

/**
 * The SQL that creates the store's table: for a migration, with `createTable: false`. A row is a
 * claim (`owner` set, `done` false) or a done mark (`done` true); either expires at `expires_at`,
 * after which a claim may take the key again. The index serves `prune()`.
 */
export function postgresStoreSchema (options: Omit<PostgresStoreOptions, 'createTable'> = {}): string {
  const table = tableOf(options)
  const index = identifier(`${options.table ?? 'provider_callbacks_events'}_expires_at`.slice(0, 63), 'table')
  return `CREATE TABLE IF NOT EXISTS ${table} (
  key text PRIMARY KEY,
  owner text,
  done boolean NOT NULL DEFAULT false,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${index} ON ${table} (expires_at);`
}

// Times are the database's (clock_timestamp(), not the transaction's start): every replica then
// reads one clock, and a claim's expiry is counted from when PostgreSQL took it, never before it
// was sent. A claim takes a key that is free, or whose row (a claim or a done mark) expired; what
// holds it otherwise comes back in the same statement. Only the owner's own claim is extended,
// recorded or dropped: after an expiry another replica may hold it.
function statements (table: string): Record<'claim' | 'claimMany' | 'refresh' | 'refreshMany' | 'complete' | 'done' | 'release' | 'prune', string> {
  const expiry = (ttl: string): string => `clock_timestamp() + ${ttl} * interval '1 millisecond'`
  // A key taken is always updated, to itself unless it expired: the row then comes back as it is
  // once any transaction holding it ended (a run committing its done mark makes this wait, then
  // read done), where a read beside the INSERT would see it as of before the wait. "Expired" is
  // read against the new claim's own expiry, so that the three columns agree.
  const expired = 'c.expires_at <= excluded.expires_at - $3 * interval \'1 millisecond\''
  const take = `ON CONFLICT (key) DO UPDATE SET
  owner = CASE WHEN ${expired} THEN excluded.owner ELSE c.owner END,
  done = CASE WHEN ${expired} THEN false ELSE c.done END,
  expires_at = CASE WHEN ${expired} THEN excluded.expires_at ELSE c.expires_at END
RETURNING key, owner, done`
  return {
    claim: `INSERT INTO ${table} AS c (key, owner, done, expires_at) VALUES ($1, $2, false, ${expiry('$3')})
${take}`,
    // In the keys' order: two replicas claiming overlapping batches then lock rows in one order, never deadlock.
    claimMany: `INSERT INTO ${table} AS c (key, owner, done, expires_at)
SELECT key, owner, false, ${expiry('$3')} FROM unnest($1::text[], $2::text[]) AS i (key, owner) ORDER BY key
${take}`,
    refresh: `UPDATE ${table} SET expires_at = ${expiry('$3')} WHERE key = $1 AND owner = $2 AND NOT done AND expires_at > clock_timestamp()`,
    refreshMany: `UPDATE ${table} c SET expires_at = ${expiry('$3')} FROM unnest($1::text[], $2::text[]) AS i (key, owner)
WHERE c.key = i.key AND c.owner = i.owner AND NOT c.done AND c.expires_at > clock_timestamp() RETURNING c.key, c.owner`,
    // Outside a transaction the claim must be live, as in Redis (where an expired one is gone).
    complete: `UPDATE ${table} SET done = true, owner = NULL, expires_at = ${expiry('$3')}
WHERE key = $1 AND owner = $2 AND NOT done AND expires_at > clock_timestamp()`,
    // Inside the handlers' transaction the owner alone fences: another run must claim the key
    // (which changes the owner) before it can commit, and this UPDATE locks the row until COMMIT,
    // so a claim by another replica waits for it and then finds the key done. A claim that expired
    // with nobody taking it is still this run's alone, and its commit is the event's only one.
    done: `UPDATE ${table} SET done = true, owner = NULL, expires_at = ${expiry('$3')} WHERE key = $1 AND owner = $2 AND NOT done`,
    release: `DELETE FROM ${table} WHERE key = $1 AND owner = $2 AND NOT done`,
    prune: `DELETE FROM ${table} WHERE expires_at <= clock_timestamp()`
  }
}

// CREATE TABLE IF NOT EXISTS is not safe against a concurrent one: two replicas starting together
// may see one fail on the catalog's unique index (23505) or on the table now existing (42P07).
const CREATED_MEANWHILE = new Set<string | undefined>(['23505', '42P07'])

/**
 * A store shared by every replica, in PostgreSQL: a claim is a row that expires (a process that
 * dies loses it after its ttl), its done mark the same row, updated. Transactional: with
 * `idempotency: { store, transactional: true }` the handlers get a client inside a transaction
 * (`context.tx`), and the done mark is written in it, so their writes and the mark commit together.
 * Long for a reason: its methods close over one pool, its table's statements and the table's making.
 */
export function postgresStore (pool: PostgresPoolLike, options: PostgresStoreOptions = {}): PostgresStore {
  if (typeof pool?.query !== 'function' || typeof pool.connect !== 'function') {
    throw new InvalidOptionError('postgresStore: pool must be a node-postgres Pool (query and connect)')
  }
  const sql = statements(tableOf(options))
  const prefix = options.prefix ?? ''
  if (typeof prefix !== 'string') throw new InvalidOptionError(`postgresStore: prefix must be a string, got ${JSON.stringify(prefix)}`)
  const schema = postgresStoreSchema(options)
  let ready: Promise<void> | undefined
  const created = async (): Promise<void> => {
    if (options.createTable === false) return
    ready ??= pool.query(schema).then(() => {}, (error: { code?: string }) => {
      if (CREATED_MEANWHILE.has(error.code)) return
      // Not there yet (the database is down): the next call tries again.
      ready = undefined
      throw error
    })
    await ready
  }
  const query = async (text: string, values: unknown[]): Promise<PostgresResult> => {
    await created()
    return await pool.query(text, values)
  }
  const claimedOf = (row: { owner: string | null, done: boolean }, owner: string): ClaimResult => row.owner === owner ? 'claimed' : row.done ? 'done' : 'in-flight'

  const claimMany = async (claims: readonly KeyOwner[], ttl: number): Promise<ClaimResult[]> => {
    // One row per key in a statement (ON CONFLICT cannot touch a row twice): a key repeated in a
    // batch is claimed by its first item, and the later ones find it taken by that one.
    const first = new Map<string, string>()
    for (const { key, owner } of claims) if (!first.has(prefix + key)) first.set(prefix + key, owner)
    const { rows } = await query(sql.claimMany, [[...first.keys()], [...first.values()], ttl])
    const byKey = new Map<string, ClaimResult>()
    for (const row of rows) byKey.set(row.key, claimedOf(row, first.get(row.key)!))
    return claims.map(({ key, owner }) => {
      const result = byKey.get(prefix + key)!
      return first.get(prefix + key) === owner || result !== 'claimed' ? result : 'in-flight'
    })
  }
  const refreshMany = async (claims: readonly KeyOwner[], ttl: number): Promise<boolean[]> => {
    const { rows } = await query(sql.refreshMany, [claims.map(claim => prefix + claim.key), claims.map(claim => claim.owner), ttl])
    // Keyed by key and owner: a key may come twice, once for each of two owners.
    const extended = new Set(rows.map(row => `${row.owner as string}\n${row.key as string}`))
    return claims.map(({ key, owner }) => extended.has(`${owner}\n${prefix}${key}`))
  }
  const begin = async (): Promise<StoreTransaction<PostgresClientLike>> => {
    await created()
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
    } catch (error) {
      client.release(error as Error)
      throw error
    }
    return new Transaction(client, sql.done, prefix)
  }

  return {
    claim: async (key, owner, ttl) => claimedOf((await query(sql.claim, [prefix + key, owner, ttl])).rows[0], owner),
    claimMany,
    refresh: async (key, owner, ttl) => (await query(sql.refresh, [prefix + key, owner, ttl])).rowCount === 1,
    refreshMany,
    complete: async (key, owner, ttl) => (await query(sql.complete, [prefix + key, owner, ttl])).rowCount === 1,
    release: async (key, owner) => { await query(sql.release, [prefix + key, owner]) },
    prune: async () => Number((await query(sql.prune, [])).rowCount),
    begin
  }
}

/** One event's transaction on a client of the pool, which it gives back once it ends. */
class Transaction implements StoreTransaction<PostgresClientLike> {
  readonly tx: PostgresClientLike
  readonly #done: string
  readonly #prefix: string
  #ended = false

  constructor (client: PostgresClientLike, done: string, prefix: string) {
    this.tx = client
    this.#done = done
    this.#prefix = prefix
  }

  async commit (key: string, owner: string, ttl: number): Promise<boolean> {
    try {
      const { rowCount } = await this.tx.query(this.#done, [this.#prefix + key, owner, ttl])
      if (rowCount !== 1) {
        await this.rollback()
        return false
      }
      await this.tx.query('COMMIT')
    } catch (error) {
      // A handler's failed statement aborted the transaction, or the connection dropped: either
      // way this connection's state is unknown, and it is closed rather than given back.
      this.#end(error as Error)
      throw error
    }
    this.#end()
    return true
  }

  async rollback (): Promise<void> {
    if (this.#ended) return
    try {
      await this.tx.query('ROLLBACK')
      this.#end()
    } catch (error) {
      // A connection that cannot roll back is closed, which rolls back on the server.
      this.#end(error as Error)
    }
  }

  #end (error?: Error): void {
    this.#ended = true
    this.tx.release(error)
  }
}
