import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import pg from 'pg'
import type { Test } from 'tap'
import { cleanUp, freePort } from './redis-helpers.js'

export const PG_URL = process.env.PG_URL ?? 'postgres://root@127.0.0.1:5432/test'

const run = promisify(execFile)

/** A client for one piece of work, ended after it however it went. */
async function withClient<T> (url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  client.on('error', () => {}) // a backend that goes away fails the query waiting on it; the event alone would crash the file
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Whether the PostgreSQL these tests need is there. Without it they skip, loudly, on a laptop;
 * under CI they must run, so there its absence is a failure.
 */
export async function postgresAvailable (t: Test, url = PG_URL): Promise<boolean> {
  try {
    await withClient(url, async client => await client.query('select 1'))
    return true
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    if (process.env.CI !== undefined) {
      t.fail(`PostgreSQL is not reachable at ${url} (${why}), and CI is set: the PostgreSQL tests must run`)
    } else {
      t.comment(`!!! SKIPPED: no PostgreSQL at ${url} (${why}; set PG_URL); the PostgreSQL tests did not run`)
      t.skip(`no PostgreSQL at ${url}`, async () => {})
    }
    return false
  }
}

/**
 * What a test's schema on the shared server is named: a test leaves none behind, and any found
 * (leftoverSchemas) are a test's that did not clean up, never a developer's own.
 */
export const SCHEMA_PREFIX = 'pct_'

/**
 * A pool on the shared PostgreSQL (PG_URL) whose sessions see only a schema of this test's own, so
 * that tests running at once (tap runs files in parallel) and a developer's own tables never meet.
 * The schema, and whatever the test made in it, is dropped when `t` ends, however it ended (cleanUp).
 */
export async function testSchema (t: Test, url = PG_URL): Promise<{ pool: pg.Pool, schema: string }> {
  const schema = `${SCHEMA_PREFIX}${randomBytes(6).toString('hex')}`
  // The pool's sessions are named after the schema, so that one the test never gave back can be
  // found and ended: it would keep pool.end() waiting and hold locks DROP SCHEMA waits for.
  const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, application_name: schema, connectionTimeoutMillis: 5000 })
  pool.on('error', () => {}) // an idle client whose backend went away: the pool drops it and the next query gets another
  pool.on('connect', client => { client.on('error', () => {}) }) // one checked out: the query waiting on it fails, which is what a test looks at
  cleanUp(t, async () => {
    const ended = pool.ending || await Promise.race([pool.end().then(() => true), sleep(5000, false, { ref: false })])
    await withClient(url, async client => {
      await client.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()', [schema])
      await client.query(`drop schema if exists ${schema} cascade`)
    })
    if (!ended) throw new Error(`testSchema: the pool on ${schema} did not end in 5 s: a client taken from it with pool.connect() was never released`)
  })
  await withClient(url, async client => await client.query(`create schema ${schema}`))
  return { pool, schema }
}

/** The test schemas (SCHEMA_PREFIX) on the server at `url`: after the tests, there should be none of theirs. */
export async function leftoverSchemas (url = PG_URL): Promise<string[]> {
  const { rows } = await withClient(url, async client => await client.query<{ nspname: string }>(
    'select nspname from pg_namespace where nspname like $1 order by nspname', [`${SCHEMA_PREFIX.replaceAll('_', '\\_')}%`]))
  return rows.map(row => row.nspname)
}

/** Where PostgreSQL's programs are: PG_BINDIR, else where pg_config says, else Debian's place for 15. */
let found: string | undefined
function bindir (): string {
  if (process.env.PG_BINDIR !== undefined) return process.env.PG_BINDIR
  if (found === undefined) {
    const asked = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
    found = asked.status === 0 && asked.stdout.trim() !== '' ? asked.stdout.trim() : '/usr/lib/postgresql/15/bin'
  }
  return found
}

// initdb and postgres refuse to run as root: as root, they run as the postgres OS user.
const asRoot = process.getuid?.() === 0

/** The command that runs one of PostgreSQL's programs as the user it will run as. */
function command (program: string, args: string[]): [string, string[]] {
  const path = join(bindir(), program)
  return asRoot ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args]
}

/** A postgresql.conf line: every value quoted, which the file takes for numbers and booleans too. */
const setting = ([name, value]: [string, string | number | boolean]): string => `${name} = '${String(value).replaceAll("'", "''")}'\n`

/** Every OwnPostgres not yet closed: stopped and removed when the process exits, should a test never get to close it. */
const unclosed = new Set<OwnPostgres>()
let exitHooked = false

/**
 * A PostgreSQL server of the test's own, on a port of its own, with its data in a folder of its
 * own, so it can be stopped (as in a restart, or a crash) and started again keeping what it held.
 * The machine's server is never touched: it listens on 127.0.0.1 only, its socket is in its folder.
 */
export class OwnPostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'provider-callbacks-pg-'))
  /** `settings`: more of postgresql.conf. */
  constructor (readonly port: number, readonly settings: Record<string, string | number | boolean> = {}) {
    unclosed.add(this)
    if (!exitHooked) {
      exitHooked = true
      // The server is a daemon: pg_ctl starts it in a session of its own, so a test process that
      // is killed does not take it along; one that exits (process.exit, an uncaught error) does, here.
      process.once('exit', () => {
        for (const left of unclosed) {
          if (existsSync(join(left.data, 'postmaster.pid'))) spawnSync(...command('pg_ctl', ['stop', '-D', left.data, '-m', 'immediate', '-w', '-t', '10']), { cwd: left.dir, stdio: 'ignore' })
          rmSync(left.dir, { recursive: true, force: true })
        }
      })
    }
  }

  get data (): string {
    return join(this.dir, 'data')
  }

  get log (): string {
    return join(this.dir, 'server.log')
  }

  get url (): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }

  async #run (program: string, args: string[]): Promise<string> {
    const [file, all] = command(program, args)
    try {
      // The folder as working directory: the postgres user may not be allowed into the test's.
      return (await run(file, all, { cwd: this.dir, encoding: 'utf8', timeout: 120_000 })).stdout
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string, stderr?: string }
      throw new Error(`${program} ${args.join(' ')}: ${(stderr ?? '') + (stdout ?? '') || String(error)}`.trim(), { cause: error })
    }
  }

  /** Creates the cluster, once; start() does it too. */
  async init (): Promise<void> {
    if (existsSync(join(this.data, 'PG_VERSION'))) return
    if (asRoot) await run('chown', ['postgres:', this.dir])
    // A cluster for one test: not synced to disk, nor its writes (fsync off) unless settings say
    // otherwise. Commits still wait for the WAL to reach the kernel (synchronous_commit stays on),
    // so a crash of the server (stop('immediate')), not of the machine, keeps every commit.
    await this.#run('initdb', ['-D', this.data, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'])
    appendFileSync(join(this.data, 'postgresql.conf'), Object.entries({
      port: this.port, listen_addresses: '127.0.0.1', unix_socket_directories: this.dir, fsync: 'off', ...this.settings
    }).map(setting).join(''))
  }

  async start (): Promise<void> {
    await this.init()
    // Only a server that cannot start runs out of this; a busy machine must not.
    const deadline = Date.now() + 60_000
    try {
      // pg_ctl waits until the server is ready, and gives up at once if it dies on the way.
      await this.#run('pg_ctl', ['start', '-D', this.data, '-l', this.log, '-w', '-t', '60'])
    } catch (error) {
      throw new Error(`PostgreSQL on port ${this.port} did not start: ${(error as Error).message}\n${this.#logTail()}`, { cause: error })
    }
    // Ready by its pid file; a test connects over TCP, so it waits for that.
    for (;;) {
      try {
        await withClient(this.url, async client => await client.query('select 1'))
        return
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`PostgreSQL on port ${this.port} started but takes no connections: ${(error as Error).message}\n${this.#logTail()}`, { cause: error })
        await sleep(50)
      }
    }
  }

  #logTail (): string {
    return existsSync(this.log) ? readFileSync(this.log, 'utf8').slice(-2000) : ''
  }

  async running (): Promise<boolean> {
    try {
      await this.#run('pg_ctl', ['status', '-D', this.data])
      return true
    } catch {
      return false // 3: not running; 4: no cluster there (yet)
    }
  }

  /**
   * 'fast': ends the sessions and shuts down cleanly, as in a restart. 'immediate': the server
   * exits at once and recovers from its WAL when started again, as after a crash.
   */
  async stop (mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!await this.running()) return
    await this.#run('pg_ctl', ['stop', '-D', this.data, '-m', mode, '-w', '-t', '60'])
  }

  /** Stops the server and removes its folder. A server that would not stop keeps its folder: the process's exit tries again. */
  async close (): Promise<void> {
    try {
      await this.stop('fast')
    } catch {
      await this.stop('immediate')
    }
    unclosed.delete(this)
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/**
 * A started PostgreSQL of the test's own (OwnPostgres), closed when `t` ends however it ended
 * (cleanUp). Undefined (the test skipped, loudly) where initdb cannot run on a laptop; under CI,
 * where it must, that is a failure. A server whose cluster was made but that does not start fails
 * the test everywhere.
 */
export async function ownPostgres (t: Test, settings: Record<string, string | number | boolean> = {}): Promise<OwnPostgres | undefined> {
  const postgres = new OwnPostgres(await freePort(), settings)
  cleanUp(t, async () => { await postgres.close() })
  try {
    await postgres.init()
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    if (process.env.CI !== undefined) {
      t.fail(`initdb cannot run (${why}), and CI is set: the tests on a PostgreSQL of their own must run`)
    } else {
      t.comment(`!!! SKIPPED: initdb cannot run (${why}; set PG_BINDIR); the tests on a PostgreSQL of their own did not run`)
      t.skip('initdb cannot run', async () => {})
    }
    return undefined
  }
  await postgres.start()
  return postgres
}
