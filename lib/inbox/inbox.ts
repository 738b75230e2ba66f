import { EventEmitter } from 'node:events'
import type { Queue } from 'bullmq'
import type { AnyProviderCallbackEvent } from '../event-types.js'
import type { FanOutInbox } from './fan-out.js'
import { jobData, type InboxJobData, type TraceCarrier } from './job.js'
import { resolveInboxOptions, type BullmqInboxOptions, type InboxConnection, type InboxSettings } from './options.js'
import { deadLetters, retryDeadLetter, retryDeadLetters, type DeadLetter } from './dead-letters.js'
import { LazyQueue } from './queue.js'
import { appendReceived, receivedKey } from './stream.js'

export type { DeadLetter } from './dead-letters.js'

/**
 * Why an event became a dead letter: `failed`, every attempt failed; `unrecoverable`, a handler
 * threw `UnrecoverableError`; `stalled`, its runs stalled more than `maxStalledCount` times (their
 * workers died), and the last was not run. `attempts`: the runs whose handlers failed; `stalls`:
 * the runs whose workers died.
 */
export interface DeadLettered {
  reason: 'failed' | 'unrecoverable' | 'stalled'
  attempts: number
  stalls: number
}

/**
 * The part of BullMQ's `Queue` this package's types name, so that its declarations need no
 * bullmq of the host's; the object is BullMQ's own Queue (`as Queue` for @bull-board).
 */
export interface InboxQueue {
  readonly name: string
  readonly qualifiedName: string
  getJobCounts(...types: string[]): Promise<Record<string, number>>
}

/**
 * The durable inbox: where verified events wait for their handlers. See `bullmqInbox`. Events,
 * from the workers of this process: `exhausted` (event, error, dead): the event is now a dead
 * letter, `dead` saying why (failed, unrecoverable, stalled); `failed` (event, error): one run
 * failed and will be retried (or not).
 */
export interface Inbox extends EventEmitter {
  readonly name: string
  on(event: 'exhausted', listener: (event: AnyProviderCallbackEvent, error: Error, dead: DeadLettered) => void): this
  on(event: 'failed', listener: (event: AnyProviderCallbackEvent, error: Error) => void): this
  /** The BullMQ `Queue` (for a dashboard such as @bull-board, or metrics). bullmq is loaded on the first call. */
  queue(): Promise<InboxQueue>
  /** The dead letters, oldest first. */
  failed(): Promise<DeadLetter[]>
  /** Runs a dead-lettered event again, with its attempts afresh; `false` when it is not a dead letter. */
  retry(eventId: string): Promise<boolean>
  /** `retry` for every dead letter; how many went back. */
  retryFailed(): Promise<number>
  /** Closes the queue and the inbox's own connection (not the host's). */
  close(): Promise<void>
}

// Loaded on first use only: an app without an inbox never loads bullmq.
const loadBullmq = async (): Promise<typeof import('bullmq')> => await import('bullmq')

/** ms between two tries, for a fail-fast client, to reconnect to a Redis that went away. */
const RECONNECT_DELAY = 200

/**
 * A client duplicated from the host's, for what a request or a claim waits on: no offline queue
 * and no retries, so a Redis that is down fails a command at once (a 503, a claim unavailable)
 * rather than holding it until Redis is back. Connected on first use (`connected`).
 */
export function failFastClient (connection: InboxConnection, commandTimeout: number): InboxConnection {
  const client = connection.duplicate({
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout,
    retryStrategy: () => RECONNECT_DELAY,
    lazyConnect: true
  })
  // A fail-fast client reports every failed command; what matters is logged where it fails.
  client.on('error', () => {})
  return client
}

/** `client`, its connection started if it never was. */
export function connected (client: InboxConnection): InboxConnection {
  if (client.status === 'wait') client.connect().catch(() => {})
  return client
}

/** Events one entry of the received stream holds at most: a flood of requests in one turn makes several. */
const MAX_RECEIVED = 1000

/** The requests stored together: those of one turn of the event loop, or of the turns an add was on its way. */
interface Pending {
  events: InboxJobData[]
  /** When its first request came: its add is bounded by addTimeout from then. */
  since: number
  /** Its turn is over: it may go as soon as an add may. */
  due: boolean
  stored: Promise<void>
  settle: (error?: unknown) => void
}

export class BullmqInbox extends EventEmitter implements Inbox, FanOutInbox {
  readonly name: string
  readonly settings: InboxSettings
  readonly connection: InboxConnection
  /** The received stream's key (stream.ts). */
  readonly received: string
  // The inbox's own client, duplicated from the host's: what a request waits on.
  readonly #commands: InboxConnection
  readonly #queue = new LazyQueue(async () => {
    const { Queue } = await loadBullmq()
    return new Queue(this.name, { connection: this.commands() as never, prefix: this.settings.prefix })
  })

  #closed = false
  // Gathering requests; full ones (MAX_RECEIVED events) wait for their add in #full.
  #pending: Pending | undefined
  readonly #full: Pending[] = []
  // One received entry on its way to Redis at a time. Requests read meanwhile gather into the next,
  // which goes once it is back (a group commit): the busier the app, the more requests an add
  // holds, so Redis's work and the app's per request fall as the load rises.
  #adding = false

  constructor (options: BullmqInboxOptions) {
    super()
    this.settings = resolveInboxOptions(options)
    this.name = this.settings.name
    this.connection = options.connection
    this.received = receivedKey(this.settings.prefix, this.name)
    this.#commands = failFastClient(options.connection, this.settings.addTimeout)
  }

  /** The fail-fast client, connected on first use: for the queue's commands. */
  commands (): InboxConnection {
    return connected(this.#commands)
  }

  /**
   * Connects, waiting up to addTimeout: the app is ready to take callbacks once this resolved,
   * or (Redis is down) answers them 503 until the client is connected again.
   */
  async connect (): Promise<void> {
    await this.withQueue(async () => {})
  }

  async queue (): Promise<Queue> {
    return await this.#queue.get()
  }

  /**
   * Stores a request's events: with those of the other requests of this turn of the event loop
   * (and of the turns while the previous add was on its way), in one entry of the received stream
   * (one command, so all or none), which a worker fans out into a job per event.
   * BullMQ's jobs are thus made off the provider's path, and a batch of any size, or many requests
   * at once, cost one XADD. Rejects when Redis did not acknowledge in time
   * or cannot be reached; the route then answers 503.
   */
  async enqueue (events: readonly AnyProviderCallbackEvent[], trace?: TraceCarrier): Promise<void> {
    // Disconnected: no command can go; said at once, without waiting for a reconnection.
    const commands = this.commands()
    if (commands.status !== 'ready') throw new Error(`Redis is not connected (${commands.status})`)
    const pending = this.#pending ??= this.#gather()
    let at: Date | undefined
    let receivedAt = ''
    for (const event of events) {
      if (event.receivedAt !== at) {
        at = event.receivedAt
        receivedAt = at.toISOString()
      }
      pending.events.push(jobData(event, receivedAt, trace))
    }
    if (pending.events.length >= MAX_RECEIVED) {
      this.#pending = undefined
      this.#full.push(pending)
      this.#send()
    }
    await pending.stored
  }

  #gather (): Pending {
    let settle!: Pending['settle']
    const stored = new Promise<void>((resolve, reject) => { settle = error => { error === undefined ? resolve() : reject(error) } })
    const pending: Pending = { events: [], since: Date.now(), due: false, stored, settle }
    // After the turn's I/O callbacks: every request read in it has added its events by then.
    setImmediate(() => {
      pending.due = true
      this.#send()
    })
    return pending
  }

  // The next add, unless one is on its way: full jobs first, in their order, then the gathering
  // one once its turn is over.
  #send (): void {
    if (this.#adding) return
    let next = this.#full.shift()
    if (next === undefined && this.#pending?.due === true) {
      next = this.#pending
      this.#pending = undefined
    }
    if (next === undefined) return
    const { events, since, settle } = next
    this.#adding = true
    this.#bounded(async () => { await appendReceived(this.commands(), this.received, events) }, since).then(() => { settle() }, settle).finally(() => {
      this.#adding = false
      this.#send()
    })
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

  // The client's commandTimeout bounds each command; this bounds BullMQ's start-up (which waits
  // for a connection) as well. Work that lands after its caller gave up is harmless: an add that
  // lands after a 503 is found by the redelivery, which stores nothing new.
  async #bounded<T> (work: () => Promise<T>, since = Date.now()): Promise<T> {
    const { addTimeout } = this.settings
    const done = work()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`Redis did not answer within ${addTimeout} ms`)) }, since + addTimeout - Date.now())
    })
    try {
      return await Promise.race([done, timeout])
    } finally {
      clearTimeout(timer)
      done.catch(() => {})
    }
  }

  /** `work` on the queue, BullMQ's start-up included, bounded by addTimeout. */
  async withQueue<T> (work: (queue: Queue) => Promise<T>): Promise<T> {
    return await this.#bounded(async () => await work(await this.queue()))
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // The client first: a queue still waiting for Redis (it is down) then stops waiting.
    this.#commands.disconnect()
    await this.#queue.close()
  }
}

/**
 * A durable inbox on BullMQ over the host's Redis: a request is answered 200 once its events are
 * stored, and a worker (this process's, or `createInboxWorker` elsewhere) runs their handlers, with
 * retries, backoff and dead letters. Give it to the plugin as `inbox`.
 */
export function bullmqInbox (options: BullmqInboxOptions): Inbox {
  return new BullmqInbox(options)
}
