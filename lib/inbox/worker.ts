import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Job, Worker } from 'bullmq'
import type { FastifyBaseLogger } from 'fastify'
import { deliveries, type Deliveries } from '../delivery/deliveries.js'
import type { Deliver, DeliveryRequest, Handlers } from '../delivery/outcome.js'
import { integerOption } from '../checks.js'
import { ClaimLostError } from '../errors.js'
import type { AnyProviderCallbackEvent, ProviderCallbackEventName, ProviderCallbackEvents } from '../event-types.js'
import { reportHandlerFailure } from '../events.js'
import type { DeliveryContext, HandlerContext } from '../handler-context.js'
import { redisStore, type RedisClientLike } from '../idempotency/redis.js'
import { loggable } from '../loggable-error.js'
import { isUnrecoverable, UnrecoverableError } from './errors.js'
import { startFanOut, type FanOut } from './fan-out.js'
import type { InboxHooks } from './hooks.js'
import type { WorkerBackend, WorkerInbox } from './backend.js'
import { connected, failFastClient, type BullmqInbox, type DeadLettered } from './inbox.js'
import { eventOf, type InboxJobData } from './job.js'
import type { CommonInboxSettings, InboxConnection } from './options.js'

/** A handler run by an inbox's worker: there is no request (it was answered long ago). */
export type InboxHandler<Event = AnyProviderCallbackEvent> = (event: Event, request: undefined, context: HandlerContext) => void | Promise<void>

/** One handler per event name, as the plugin's `handlers` option. */
export type InboxHandlers = {
  [Name in ProviderCallbackEventName]?: InboxHandler<ProviderCallbackEvents[Name]>
}

/** What a worker runs on, beside the inbox: the options of createInboxWorker and of the plugin's `worker`. */
export interface InboxWorkerSettings {
  /** Events run at once by this worker. Default 1 (BullMQ's). */
  concurrency?: number
  /** BullMQ's: ms a job's lock lasts unless renewed; a worker that dies loses its jobs after it. Default 30 s. */
  lockDuration?: number
  /** BullMQ's: ms between two checks for jobs whose worker died. Default 30 s. */
  stalledInterval?: number
  /**
   * BullMQ's: times a job may stall (its worker died, or held it past `lockDuration` unrenewed)
   * before the next worker to take it dead-letters it without running it, reason `stalled`.
   * Counted apart from `attempts`, over the job's life. Default: the inbox's `attempts` (BullMQ's
   * own default, 1, dead-letters an event whose second worker dies too, whatever its attempts).
   */
  maxStalledCount?: number
  /** Where failures are logged (pino or anything with its methods). Default: errors and warnings to stderr. */
  logger?: FastifyBaseLogger
}

/**
 * What `createInboxWorker` returns. Events: `exhausted` (event, error, dead): the event is now a
 * dead letter, `dead` saying why; `failed` (event, error): one run failed.
 */
export interface InboxWorker extends EventEmitter {
  /** The BullMQ Worker. */
  readonly worker: Promise<unknown>
  on(event: 'exhausted', listener: (event: AnyProviderCallbackEvent, error: Error, dead: DeadLettered) => void): this
  on(event: 'failed', listener: (event: AnyProviderCallbackEvent, error: Error) => void): this
  /** Waits for the events running to finish, then stops (Redis unreachable: without waiting for it). */
  close(): Promise<void>
}

/** The handlers a worker runs: a `handlers` map's, or the app's `providerCallbacks`. */
export interface HandlerSource {
  handlersOf(event: AnyProviderCallbackEvent): ReadonlyArray<(event: AnyProviderCallbackEvent, request: any, context: HandlerContext) => void | Promise<void>>
}

const HOUR = 3600 * 1000
// BullMQ's defaults, which the received stream's reader follows too.
const LOCK_DURATION = 30_000
const STALLED_INTERVAL = 30_000
// ms before a Worker that could not start is made again.
const RESTART_DELAY = 1000

/**
 * The claim protocol runs the worker's handlers through this: the event's own, without a request,
 * the error they threw kept (the protocol only logs it) for BullMQ's failedReason and retry decision.
 */
class JobHandlers implements Handlers {
  readonly #source: HandlerSource
  readonly #onError: (error: unknown) => void
  readonly errors = new WeakMap<AnyProviderCallbackEvent, Error>()

  constructor (source: HandlerSource, onError: (error: unknown) => void) {
    this.#source = source
    this.#onError = onError
  }

  // Every job is run: one with no handler here must fail, not be acknowledged (see #run).
  hasListeners (): boolean {
    return true
  }

  async deliver (event: AnyProviderCallbackEvent, request: DeliveryRequest, context: DeliveryContext): Promise<boolean> {
    try {
      await this.#run(event, context)
      return true
    } catch (error) {
      return reportHandlerFailure(error, event, request, this.#onError)
    }
  }

  async #run (event: AnyProviderCallbackEvent, context: DeliveryContext): Promise<void> {
    const handlers = this.#source.handlersOf(event)
    // A worker with no handler for it (an older version's, in a rolling deploy; a handlers map
    // missing a type) must not acknowledge it: the run fails, the claim goes back, and a retry
    // finds a worker that has one, or the event is dead-lettered saying why.
    if (handlers.length === 0) {
      const error = new Error(`no handler for '${event.name}' in this worker`)
      this.errors.set(event, error)
      throw error
    }
    const results = await Promise.allSettled(handlers.map(async handler => { await handler(event, undefined, context) }))
    const failures = results.flatMap(result => result.status === 'rejected' ? [result.reason as unknown] : [])
    if (failures.length === 0) return
    // BullMQ keeps an Error's message as the job's failedReason: a thrown string becomes one.
    const error = failures.length === 1 ? asError(failures[0]) : new AggregateError(failures, `${failures.length} handlers failed: ${failures.map(messageOf).join('; ')}`)
    // One handler that asks for no retry stops them all: a retry would run it again.
    this.errors.set(event, failures.some(isUnrecoverable) && !isUnrecoverable(error) ? new UnrecoverableError(messageOf(error), { cause: error }) : error)
    throw error
  }
}

/**
 * A worker over `source`'s handlers: BullMQ's Worker for the jobs, the received stream's fan-out,
 * the claim protocol on the inbox's Redis around each run. `hooks`: the plugin's telemetry, or the
 * one createInboxWorker loads.
 */
export function startInboxWorker (
  inbox: WorkerInbox, source: HandlerSource, options: InboxWorkerSettings, hooks?: InboxHooks | Promise<InboxHooks | undefined>
): InboxWorker {
  return new JobWorker(inbox, source, options, hooks)
}

class JobWorker extends EventEmitter implements InboxWorker {
  readonly worker: Promise<Worker<InboxJobData>>
  readonly #inbox: WorkerInbox
  readonly #settings: CommonInboxSettings
  readonly #backend: WorkerBackend
  readonly #log: FastifyBaseLogger
  readonly #maxStalledCount: number
  readonly #handlers: JobHandlers
  readonly #delivery: Deliveries
  readonly #byProvider: Record<AnyProviderCallbackEvent['provider'], Deliver>
  // What the claim protocol logs through: there is no request in a worker.
  readonly #request: DeliveryRequest
  // Set before the BullMQ worker exists, so before its first job.
  #hooks: InboxHooks | undefined
  #cleaner: NodeJS.Timeout | undefined
  #fanOut: { close(): Promise<void> } | undefined
  // The Worker running now: another than the first when the first could not start (PostgreSQL).
  #current: Worker<InboxJobData> | undefined
  #stopObserving: (() => void) | undefined
  #closing: Promise<void> | undefined

  constructor (inbox: WorkerInbox, source: HandlerSource, options: InboxWorkerSettings, hooks: InboxHooks | Promise<InboxHooks | undefined> | undefined) {
    super()
    const { settings } = inbox
    this.#inbox = inbox
    this.#settings = settings
    this.#log = options.logger ?? stderrLogger
    this.#request = { log: this.#log }
    const concurrency = integerOption(options.concurrency ?? 1, 'concurrency')
    // A stall is a worker's death, not a failure of the event's handlers: as many are allowed as
    // attempts, so that only a poison event (one whose runs kill their worker) ends dead for it.
    this.#maxStalledCount = integerOption(options.maxStalledCount ?? settings.attempts, 'maxStalledCount', { min: 0 })
    const backend = this.#backend = inbox.workerBackend?.() ?? redisBackend(inbox as BullmqInbox)
    this.#handlers = new JobHandlers(source, error => { this.#hooks?.handlerError(error) })
    this.#delivery = deliveries(this.#handlers, {
      store: backend.store,
      claimTtl: settings.claimTtl,
      failOpen: false,
      ...(backend.transactional && { transactional: true })
    }, this.#log)
    this.#byProvider = { edis: this.#delivery.withWindow(settings.windows.edis), voximplant: this.#delivery.withWindow(settings.windows.voximplant) }
    // Not waiting for Redis: a worker started while it is down runs once it is back.
    this.worker = Promise.all([import('bullmq'), hooks]).then(([bullmq, loaded]) => this.#start(backend.Worker(bullmq), loaded, { ...options, concurrency }))
  }

  #start (BullmqWorker: typeof Worker, hooks: InboxHooks | undefined, options: InboxWorkerSettings & { concurrency: number }): Worker<InboxJobData> {
    this.#hooks = hooks
    // The claims its runs hold count in the process's claims held, beside the routes' own.
    this.#stopObserving = hooks?.observeClaims(this.#delivery.held)
    const worker = this.#current = this.#create(BullmqWorker, options)
    this.#trim()
    this.#cleaner = setInterval(() => { this.#trim() }, HOUR).unref()
    this.#fanOut = this.#backend.started(options, this.#log, () => { hooks?.fanOutFailed() })
    return worker
  }

  #create (BullmqWorker: typeof Worker, options: InboxWorkerSettings & { concurrency: number }): Worker<InboxJobData> {
    const worker: Worker<InboxJobData> = new BullmqWorker(this.#settings.name, async (job, token) => { await this.#process(job, token) }, {
      ...this.#backend.workerOptions,
      connection: this.#backend.workerOptions.connection as never,
      concurrency: options.concurrency,
      maxStalledCount: this.#maxStalledCount,
      ...(options.lockDuration !== undefined && { lockDuration: options.lockDuration }),
      ...(options.stalledInterval !== undefined && { stalledInterval: options.stalledInterval })
    })
    worker.on('error', error => { this.#log.error({ err: loggable(error) }, 'inbox worker error') })
    // BullMQ types the job as possibly undefined, which it never is for a job the worker ran.
    worker.on('failed', (job: Job<InboxJobData> | undefined, error) => { this.#failed(job!, error) })
    if (this.#backend.restartFailed) this.#supervise(BullmqWorker, worker, options)
    return worker
  }

  // BullMQ's PostgreSQL Worker that could not start (the server was down) never tries again, and
  // says nothing: it is closed and made anew, until one starts or the worker closes.
  #supervise (BullmqWorker: typeof Worker, worker: Worker<InboxJobData>, options: InboxWorkerSettings & { concurrency: number }): void {
    worker.waitUntilReady().catch(async (error: unknown) => {
      if (this.#closing !== undefined) return
      this.#log.warn({ err: loggable(error) }, 'the inbox worker could not start; trying again')
      await worker.close(true).catch(() => {})
      await sleep(RESTART_DELAY)
      if (this.#closing === undefined) this.#current = this.#create(BullmqWorker, options)
    })
  }

  async #process (job: Job<InboxJobData>, token?: string): Promise<void> {
    const ready = this.#backend.ready()
    if (ready !== undefined) await ready
    const event = eventOf(job.data)
    const deliver = (): ReturnType<Deliver> => this.#byProvider[event.provider](event, this.#request)
    const hooks = this.#hooks
    const outcome = await (hooks === undefined ? deliver() : hooks.runJob(event, job.data.trace, job.attemptsMade + 1, deliver))
    switch (outcome) {
      case 'delivered':
      case 'duplicate':
        return
      case 'failed':
        throw this.#handlers.errors.get(event)
      // Another run holds the claim (this job stalled and its first worker is still at it, or died
      // and its claim has yet to expire), or the claim could not be taken (Redis out of reach, or
      // this worker's client not connected yet). Neither is a failure of the event's handlers, so
      // neither uses up an attempt (an event is dead-lettered by its own handlers' failures only):
      // the job waits a third of claimTtl, then finds the event done, or free again.
      case 'in-flight':
      case 'unavailable':
        await job.moveToDelayed(Date.now() + Math.ceil(this.#settings.claimTtl / 3), token)
        throw new ClaimWait(outcome)
      case 'lost':
        throw new ClaimLostError()
    }
  }

  #failed (job: Job<InboxJobData>, error: Error): void {
    const { data, attemptsMade, opts, stalledCounter, deferredFailure } = job
    const event = eventOf(data)
    // A job that stalled more than maxStalledCount times carries BullMQ's deferred failure, and
    // the worker that takes it next fails it without running it: no run of its handlers failed,
    // and the attempt BullMQ counts for it is none of theirs.
    if (deferredFailure !== undefined) {
      const attempts = attemptsMade - 1
      const max = this.#maxStalledCount
      this.#deadLetter(event, new Error(`stalled ${stalledCounter} times, more than maxStalledCount (${max}): its workers died mid-run (BullMQ: ${error.message})`, { cause: error }),
        { reason: 'stalled', attempts, stalls: stalledCounter },
        `its runs stalled ${stalledCounter} times (their workers died), more than maxStalledCount ${max}; ${attempts} of ${opts.attempts!} attempts failed`)
      return
    }
    this.#emitBoth('failed', event, error)
    // attempts is always set: the inbox gives every job its own.
    if (isUnrecoverable(error)) {
      this.#deadLetter(event, error, { reason: 'unrecoverable', attempts: attemptsMade, stalls: stalledCounter }, `a handler threw UnrecoverableError, at attempt ${attemptsMade} of ${opts.attempts!}`)
    } else if (attemptsMade >= opts.attempts!) {
      this.#deadLetter(event, error, { reason: 'failed', attempts: attemptsMade, stalls: stalledCounter }, `every attempt failed (${attemptsMade} of ${opts.attempts!})`)
    } else {
      this.#hooks?.retried(event)
    }
  }

  #deadLetter (event: AnyProviderCallbackEvent, error: Error, dead: DeadLettered, why: string): void {
    this.#log.error({ err: loggable(error), event: event.id, ...dead }, `an inbox event is dead-lettered: ${why}`)
    this.#hooks?.deadLettered(event)
    this.#emitBoth('exhausted', event, error, dead)
  }

  // The worker's own listeners, and the inbox's (the app's `providerCallbacks.inbox`).
  #emitBoth (name: 'exhausted' | 'failed', event: AnyProviderCallbackEvent, error: Error, dead?: DeadLettered): void {
    const args = dead === undefined ? [event, error] : [event, error, dead]
    this.emit(name, ...args)
    this.#inbox.emit(name, ...args)
  }

  // BullMQ trims finished jobs by age only when another job finishes: on a queue that went
  // quiet, an EDIS event's done job would outlive its window and swallow the same id's next,
  // legitimate, event. The worker trims too, hourly.
  #trim (): void {
    const { removeOnComplete, removeOnFail } = this.#settings
    this.#inbox.queue().then(async queue => {
      for (const [state, keep] of [['completed', removeOnComplete], ['failed', removeOnFail]] as const) {
        if ('age' in keep) await queue.clean(keep.age * 1000, 1000, state)
      }
    }).catch((error: unknown) => { this.#log.warn({ err: loggable(error) }, 'could not trim the inbox\'s finished jobs') })
  }

  async close (): Promise<void> {
    this.#closing ??= this.worker.then(async () => {
      clearInterval(this.#cleaner)
      const worker = this.#current!
      // No new jobs, from the stream or from BullMQ: what then finishes is all the worker took.
      await this.#fanOut?.close()
      await worker.pause(true)
      // Its handlers run to their end, however long, and their outcomes are recorded (retried as
      // long as their claims last).
      await this.#delivery.drain(Infinity)
      this.#stopObserving?.()
      // BullMQ's graceful close waits for Redis to take the jobs' outcomes and its connection's
      // QUIT, which, Redis being unreachable, it never does: then the close is forced. A job whose
      // outcome did not land stays active, and is taken again as stalled once Redis is back; its
      // claim, done or held, keeps the handlers from running twice.
      await worker.close(this.#backend.forceClose())
      await this.#backend.end()
    })
    await this.#closing
  }
}

/**
 * The Redis inbox's worker: BullMQ's Worker on the host's client, the claims over a fail-fast
 * client of the worker's own (a claim and its refreshes never wait behind the adds of the app's
 * requests), and the received stream's fan-out.
 */
function redisBackend (inbox: BullmqInbox): WorkerBackend {
  const { settings } = inbox
  const claims: InboxConnection = failFastClient(inbox.connection, settings.addTimeout)
  return {
    store: redisStore(connected(claims) as unknown as RedisClientLike, { prefix: settings.claimPrefix }),
    transactional: false,
    Worker: bullmq => bullmq.Worker,
    workerOptions: { connection: inbox.connection, prefix: settings.prefix },
    restartFailed: false,
    ready: () => claims.status === 'ready' ? undefined : readyOrNot(claims, settings.addTimeout),
    started: (options, log, failed): FanOut => startFanOut(inbox, {
      claimIdle: options.lockDuration ?? LOCK_DURATION, claimInterval: options.stalledInterval ?? STALLED_INTERVAL, log, failed
    }),
    forceClose: () => inbox.connection.status !== 'ready',
    end: async () => { claims.disconnect() }
  }
}

/**
 * Waits up to `patience` ms for `client` to be connected. A worker's first jobs come while its
 * claims' client (fail-fast: no offline queue) is still connecting, which would fail their claims
 * at once (an error logged, each job delayed by a third of claimTtl) though Redis is there.
 */
async function readyOrNot (client: InboxConnection, patience: number): Promise<void> {
  const events = client as unknown as EventEmitter
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      events.off('ready', done)
      resolve()
    }
    const timer = setTimeout(done, patience)
    events.on('ready', done)
  })
}

/** BullMQ's DelayedError, matched by name (bullmq is loaded only once a worker starts): the job was moved to the delayed set, and is neither failed nor retried. */
class ClaimWait extends Error {
  override name = 'DelayedError'
  constructor (outcome: 'in-flight' | 'unavailable') {
    super(outcome === 'in-flight' ? 'another run of this event holds its claim; delayed' : 'the claim protocol\'s Redis cannot be reached; delayed')
  }
}

function asError (error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

function messageOf (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

// Without a logger of the host's: what needs a human is written to stderr, the rest is dropped.
// `err` is an Error (what a handler threw is made one before it is logged) or what loggable() kept of one.
const write = (level: string) => (fields: { err: { message: string }, event?: string }, message: string): void => {
  console.error(`provider-callbacks inbox ${level}: ${message}`, JSON.stringify({ event: fields.event, error: fields.err.message }))
}
// The claim protocol and this worker log errors and warnings only.
const stderrLogger = { error: write('error'), warn: write('warn') } as unknown as FastifyBaseLogger
