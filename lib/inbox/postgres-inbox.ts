import { EventEmitter } from 'node:events'
import type { Queue } from 'bullmq'
import type pg from 'pg'
import { InvalidOptionError } from '../errors.js'
import type { AnyProviderCallbackEvent } from '../event-types.js'
import { postgresStore, type PostgresClientLike, type PostgresPoolLike } from '../idempotency/postgres.js'
import type { StoringInbox, WorkerBackend } from './backend.js'
import type { DeadLetter, Inbox } from './inbox.js'
import { jobData, jobIdOf, type TraceCarrier } from './job.js'
import { deadLetters, retryDeadLetter, retryDeadLetters } from './dead-letters.js'
import { LazyQueue } from './queue.js'
import { resolveCommonOptions, type CommonInboxOptions, type CommonInboxSettings } from './options.js'

/**
 * A node-postgres pool config (`{ connectionString }`, or host, user...; any pg.Pool option), with
 * BullMQ's `schema`: where its tables are (default `bullmq`), created or migrated on first use.
 */
export interface PostgresInboxConnection {
  connectionString?: string
  /** BullMQ's schema, and the claims table's. Default `'bullmq'`. */
  schema?: string
  /** ms to wait for a connection. Default the inbox's addTimeout. */
  connectionTimeoutMillis?: number
  [option: string]: unknown
}

export interface PostgresInboxOptions extends CommonInboxOptions {
  /** Where the inbox is: its pools are its own, made from this and ended by `close()`. */
  connection: PostgresInboxConnection
  /**
   * The claim protocol's table, in the connection's schema. Default `'provider_callbacks_inbox'`.
   * Its keys begin with the inbox's name: two inboxes share it without sharing an event.
   */
  claimTable?: string
  /**
   * Runs each event's handlers in a transaction of the worker's pool (`context.tx`), in which the
   * event's done mark is written: the handlers' writes and the mark commit together, or not at all.
   * Default `false`.
   */
  transactional?: boolean
}

export interface PostgresInboxSettings extends CommonInboxSettings {
  schema: string
  claimTable: string
  transactional: boolean
}

// Loaded on first use only: an app without an inbox never loads bullmq or pg.
const loadBullmq = async (): Promise<typeof import('bullmq')> => await import('bullmq')
const loadPg = async (): Promise<typeof pg> => (await import('pg')).default

/** ms a worker waits before trying PostgreSQL again after its connection failed (BullMQ's default is 15 s). */
const RUN_RETRY_DELAY = 1000

const WHO = 'postgresInbox'
const HOUR = 3600 * 1000

export class PostgresInbox extends EventEmitter implements Inbox, StoringInbox {
  readonly name: string
  readonly settings: PostgresInboxSettings
  /** BullMQ's connection options: the host's, BullMQ's schema, migrations on, a bounded wait. */
  readonly connection: Record<string, unknown>
  readonly #queue = new LazyQueue(async () => {
    const { Queue, createPostgresBackend } = await loadBullmq()
    return new Queue(this.name, { connection: this.connection as never }, createPostgresBackend as never) as unknown as Queue
  })

  #closed = false

  constructor (options: PostgresInboxOptions) {
    super()
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${WHO} needs options: { connection: { connectionString } }`)
    const { connection } = options
    if (typeof connection !== 'object' || connection === null || typeof (connection as { query?: unknown }).query === 'function') {
      throw new InvalidOptionError(`${WHO} connection must be a node-postgres pool config ({ connectionString, ... }), not a pool: the inbox makes its own`)
    }
    const common = resolveCommonOptions(options, WHO)
    const schema = connection.schema ?? 'bullmq'
    const claimTable = options.claimTable ?? 'provider_callbacks_inbox'
    for (const [value, what] of [[schema, 'connection.schema'], [claimTable, 'claimTable']] as const) {
      if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(value)) {
        throw new InvalidOptionError(`${WHO} ${what} must be a plain SQL identifier, got ${JSON.stringify(value)}`)
      }
    }
    if (options.transactional !== undefined && typeof options.transactional !== 'boolean') throw new InvalidOptionError(`${WHO} transactional must be a boolean`)
    this.settings = { ...common, schema, claimTable, transactional: options.transactional === true }
    this.name = common.name
    this.connection = { connectionTimeoutMillis: common.addTimeout, ...connection, schema, migrate: true }
  }

  async connect (): Promise<void> {
    await this.withQueue(async () => {})
  }

  async queue (): Promise<Queue> {
    return await this.#queue.get()
  }

  /**
   * Stores a request's events: one addBulk, one SQL statement, so all or none, each event a job
   * whose id is its own (an event already there stores nothing new). Rejects when PostgreSQL did
   * not answer within addTimeout or cannot be reached; the route then answers 503.
   */
  async enqueue (events: readonly AnyProviderCallbackEvent[], trace?: TraceCarrier): Promise<void> {
    const { attempts, backoff, removeOnComplete, removeOnFail, windows } = this.settings
    const jobs = events.map(event => {
      const data = jobData(event, event.receivedAt.toISOString(), trace)
      return { name: data.name, data, opts: { jobId: jobIdOf(data.id), attempts, backoff, removeOnComplete, removeOnFail } }
    })
    // The events whose completed job may outlive their window (EDIS's, by default), looked up with
    // the add, not before it (a round trip each, theirs only; an EDIS request holds one event).
    const outliving = jobs.filter(job => this.#outlives(job.data.provider))
    await this.withQueue(async queue => {
      const found = Promise.all(outliving.map(async job => await queue.getJob(job.opts.jobId)))
      found.catch(() => {})
      await queue.addBulk(jobs)
      const before = await found
      const now = Date.now()
      const old = outliving.filter((job, i) => {
        const finishedOn = before[i]?.finishedOn
        return finishedOn !== undefined && now - finishedOn >= windows[job.data.provider]
      })
      if (old.length === 0) return
      // A completed job older than its event's window: the event comes again, legitimately (EDIS's
      // edis:<kvm>:<trigger_value> does), and is a new job; a dead letter stays one.
      const states = await Promise.all(old.map(async job => await queue.getJobState(job.opts.jobId)))
      const stale = old.filter((_job, i) => states[i] === 'completed')
      if (stale.length === 0) return
      await Promise.all(stale.map(async job => await queue.remove(job.opts.jobId)))
      await queue.addBulk(stale)
    })
  }

  // Completed jobs are kept removeOnComplete's age, and trimmed up to an hour later (BullMQ's
  // trimming, the worker's hourly one): a provider whose window is shorter may see its event
  // again while its job is still there. By default, EDIS's (24 h, as long as jobs are kept), not
  // Voximplant's (7 days), whose ids never come again but as redeliveries.
  #outlives (provider: AnyProviderCallbackEvent['provider']): boolean {
    const { removeOnComplete, windows } = this.settings
    return !('age' in removeOnComplete) || removeOnComplete.age * 1000 + HOUR > windows[provider]
  }

  async failed (): Promise<DeadLetter[]> {
    return await deadLetters(async work => await this.withQueue(work))
  }

  async retry (eventId: string): Promise<boolean> {
    return await retryDeadLetter(async work => await this.withQueue(work), eventId)
  }

  async retryFailed (): Promise<number> {
    return await retryDeadLetters(async work => await this.withQueue(work))
  }

  /** `work` on the queue, BullMQ's start-up included, bounded by addTimeout. */
  async withQueue<T> (work: (queue: Queue) => Promise<T>): Promise<T> {
    const { addTimeout } = this.settings
    const done = (async () => await work(await this.queue()))()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`PostgreSQL did not answer within ${addTimeout} ms`)) }, addTimeout)
    })
    try {
      return await Promise.race([done, timeout])
    } finally {
      clearTimeout(timer)
      done.catch(() => {})
    }
  }

  /** A worker's: BullMQ's PostgreSQL Worker, and the claims on a pool of its own. */
  workerBackend (): WorkerBackend {
    const { schema, claimTable, transactional } = this.settings
    const { schema: _schema, migrate: _migrate, ...config } = this.connection
    let made: pg.Pool | undefined
    const pool = async (): Promise<pg.Pool> => {
      if (made === undefined) {
        const { Pool } = await loadPg()
        made ??= new Pool(config)
        // An idle client whose server went away: the pool drops it, the next query takes another.
        made.on('error', () => {})
      }
      return made
    }
    const lazy: PostgresPoolLike = {
      query: async (text, values) => await (await pool()).query(text, values),
      connect: async () => await (await pool()).connect() as PostgresClientLike
    }
    return {
      store: postgresStore(lazy, { schema, table: claimTable, prefix: `${this.settings.name}:` }),
      transactional,
      Worker: bullmq => bullmq.withBackend(bullmq.createPostgresBackend).Worker as never,
      workerOptions: { connection: this.connection, runRetryDelay: RUN_RETRY_DELAY },
      restartFailed: true,
      ready: () => undefined,
      started: () => undefined,
      forceClose: () => false,
      end: async () => { await made?.end() }
    }
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#queue.close()
  }
}

/**
 * A durable inbox on BullMQ's PostgreSQL backend, for an app without Redis: a request is answered
 * 200 once its events are stored (one statement), and a worker (this process's, or
 * `createInboxWorker` elsewhere) runs their handlers, with retries, backoff and dead letters, each
 * run through the claim protocol on the same database. Give it to the plugin as `inbox`.
 */
export function postgresInbox (options: PostgresInboxOptions): Inbox {
  return new PostgresInbox(options)
}
