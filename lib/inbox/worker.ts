import { EventEmitter } from 'node:events'
import type { Job, Worker } from 'bullmq'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { ClaimLostError, InvalidOptionError } from '../errors.js'
import {
  CallbackEvents, type AnyProviderCallbackEvent, type ProviderCallbackEventName, type ProviderCallbackEvents
} from '../events.js'
import type { HandlerContext } from '../handler-context.js'
import { deliveries, type Deliver } from '../idempotency/guard.js'
import { redisStore, type RedisClientLike } from '../idempotency/redis.js'
import { loadTelemetry, resolveTelemetry, type Telemetry, type TelemetryOptions } from '../telemetry.js'
import { voximplantEventNames } from '../voximplant/schema.js'
import { loggable } from '../loggable-error.js'
import { isUnrecoverable, UnrecoverableError } from './errors.js'
import { connected, failFastClient, type BullmqInbox, type Inbox } from './inbox.js'
import type { InboxConnection } from './options.js'
import { eventOf, type InboxJobData } from './job.js'
import { startFanOut, type FanOut } from './received.js'

/** A handler run by an inbox's worker: there is no request (it was answered long ago). */
export type InboxHandler<Event = AnyProviderCallbackEvent> = (event: Event, request: undefined, context: HandlerContext) => void | Promise<void>

/** One handler per event name, as the plugin's `handlers` option. */
export type InboxHandlers = {
  [Name in ProviderCallbackEventName]?: InboxHandler<ProviderCallbackEvents[Name]>
}

export interface InboxWorkerOptions {
  handlers?: InboxHandlers
  /** Runs every event, whatever its name (a Voximplant type this version does not know too). */
  onAny?: InboxHandler
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
  /**
   * OpenTelemetry, as the plugin's option: each run in a span that continues the request's trace,
   * stored, retried and dead-lettered counted. Default: on when @opentelemetry/api is installed.
   */
  telemetry?: TelemetryOptions | false
}

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

/** The handlers a worker runs: a `handlers` map, or the app's `providerCallbacks`. */
export interface HandlerSource {
  handlersOf(event: AnyProviderCallbackEvent): ReadonlyArray<(event: AnyProviderCallbackEvent, request: any, context: HandlerContext) => void | Promise<void>>
}

const HOUR = 3600 * 1000
// BullMQ's defaults, which the received stream's reader follows too.
const LOCK_DURATION = 30_000
const STALLED_INTERVAL = 30_000

/**
 * Runs an inbox's events, in any process: no Fastify needed. Each run goes through the claim
 * protocol on the inbox's Redis, so a job BullMQ runs twice (its worker stalled or died) still
 * succeeds once. A handler that throws makes the run fail and BullMQ retry it after its backoff;
 * one that throws `UnrecoverableError` sends the event to the dead letters at once.
 */
export function createInboxWorker (inbox: Inbox, options: InboxWorkerOptions = {}): InboxWorker {
  const source = new CallbackEvents(['traffic-threshold', ...voximplantEventNames])
  if (options.handlers !== undefined && (typeof options.handlers !== 'object' || options.handlers === null)) {
    throw new InvalidOptionError('handlers must be an object of event name -> function')
  }
  for (const [name, handler] of Object.entries(options.handlers ?? {}) as Array<[ProviderCallbackEventName, InboxHandler<any>]>) {
    source.on(name, handler as never)
  }
  if (options.onAny !== undefined) source.onAny(options.onAny as never)
  return startInboxWorker(inbox as BullmqInbox, source, options, loadTelemetry(resolveTelemetry(options.telemetry)))
}

/** A worker over `source`'s handlers; `telemetry` is the plugin's, or the one createInboxWorker loads. */
export function startInboxWorker (
  inbox: BullmqInbox, source: HandlerSource, options: Omit<InboxWorkerOptions, 'handlers' | 'onAny' | 'telemetry'>, telemetry?: Telemetry | Promise<Telemetry | undefined>
): InboxWorker {
  const log = options.logger ?? stderrLogger
  const { settings } = inbox
  const concurrency = options.concurrency ?? 1
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new InvalidOptionError(`concurrency must be a positive integer, got ${JSON.stringify(concurrency)}`)
  // A stall is a worker's death, not a failure of the event's handlers: as many are allowed as
  // attempts, so that only a poison event (one whose runs kill their worker) ends dead for it.
  const maxStalledCount = options.maxStalledCount ?? settings.attempts
  if (!Number.isSafeInteger(maxStalledCount) || maxStalledCount < 0) throw new InvalidOptionError(`maxStalledCount must be an integer of at least 0, got ${JSON.stringify(maxStalledCount)}`)
  // The claims go over a fail-fast client of the worker's own: a claim and its refreshes never
  // wait behind the adds of the app's requests.
  const claims = failFastClient(inbox.connection, settings.addTimeout)

  // The claim protocol runs one handler: this one, which runs the event's own and keeps the error
  // they threw (the protocol only logs it), for BullMQ's failedReason and retry decision.
  const errors = new WeakMap<AnyProviderCallbackEvent, unknown>()
  const guarded = new CallbackEvents([])
  guarded.onAny(async (event, _request, context) => {
    const handlers = source.handlersOf(event)
    // A worker with no handler for it (an older version's, in a rolling deploy; a handlers map
    // missing a type) must not acknowledge it: the run fails, the claim goes back, and a retry
    // finds a worker that has one, or the event is dead-lettered saying why.
    if (handlers.length === 0) {
      const error = new Error(`no handler for '${event.name}' in this worker`)
      errors.set(event, error)
      throw error
    }
    const results = await Promise.allSettled(handlers.map(async handler => { await handler(event, undefined, context) }))
    const failures = results.flatMap(result => result.status === 'rejected' ? [result.reason as unknown] : [])
    if (failures.length === 0) return
    // BullMQ keeps an Error's message as the job's failedReason: a thrown string becomes one.
    const error = failures.length === 1 ? asError(failures[0]) : new AggregateError(failures, `${failures.length} handlers failed: ${failures.map(messageOf).join('; ')}`)
    // One handler that asks for no retry stops them all: a retry would run it again.
    errors.set(event, failures.some(isUnrecoverable) && !isUnrecoverable(error) ? new UnrecoverableError(messageOf(error), { cause: error }) : error)
    throw error
  })
  const delivery = deliveries(guarded, {
    store: redisStore(connected(claims) as unknown as RedisClientLike, { prefix: settings.claimPrefix }),
    claimTtl: settings.claimTtl,
    failOpen: false
  }, log)
  const byProvider: Record<AnyProviderCallbackEvent['provider'], Deliver> = {
    edis: delivery.withWindow(settings.windows.edis),
    voximplant: delivery.withWindow(settings.windows.voximplant)
  }
  // What the claim protocol logs through: there is no request in a worker.
  const request = { log } as FastifyRequest

  // Set before the BullMQ worker exists, so before its first job.
  let traced: Telemetry | undefined
  const process = async (job: Job<InboxJobData>, token?: string): Promise<void> => {
    if (claims.status !== 'ready') await readyOrNot(claims, settings.addTimeout)
    const event = eventOf(job.data)
    const deliver = (): ReturnType<Deliver> => byProvider[event.provider](event, request)
    const outcome = await (traced === undefined ? deliver() : traced.runJob(event, job.data.trace, job.attemptsMade + 1, deliver))
    switch (outcome) {
      case 'delivered':
      case 'duplicate':
        return
      case 'failed':
        throw errors.get(event)
      // Another run holds the claim (this job stalled and its first worker is still at it, or died
      // and its claim has yet to expire), or the claim could not be taken (Redis out of reach, or
      // this worker's client not connected yet). Neither is a failure of the event's handlers, so
      // neither uses up an attempt (an event is dead-lettered by its own handlers' failures only):
      // the job waits a third of claimTtl, then finds the event done, or free again.
      case 'in-flight':
      case 'unavailable':
        await job.moveToDelayed(Date.now() + Math.ceil(settings.claimTtl / 3), token)
        throw new ClaimWait(outcome)
      case 'lost':
        throw new ClaimLostError()
    }
  }

  const emitter = new EventEmitter() as InboxWorker
  const emit = (name: 'exhausted' | 'failed', event: AnyProviderCallbackEvent, error: Error, dead?: DeadLettered): void => {
    emitter.emit(name, event, error, ...(dead === undefined ? [] : [dead]))
    inbox.emit(name, event, error, ...(dead === undefined ? [] : [dead]))
  }
  const deadLetter = (event: AnyProviderCallbackEvent, error: Error, dead: DeadLettered, why: string): void => {
    log.error({ err: loggable(error), event: event.id, ...dead }, `an inbox event is dead-lettered: ${why}`)
    traced?.deadLettered(event)
    emit('exhausted', event, error, dead)
  }
  let cleaner: NodeJS.Timeout | undefined
  let fanOut!: FanOut
  let stopObserving: (() => void) | undefined
  // Not waiting for Redis: a worker started while it is down runs once it is back.
  const worker = Promise.all([import('bullmq'), telemetry]).then(([{ Worker }, loaded]) => {
    traced = loaded
    // The claims its runs hold count in the process's claims held, beside the routes' own.
    stopObserving = loaded?.observeClaims(delivery.held)
    const worker: Worker<InboxJobData> = new Worker(settings.name, process, {
      connection: inbox.connection as never,
      prefix: settings.prefix,
      concurrency,
      maxStalledCount,
      ...(options.lockDuration !== undefined && { lockDuration: options.lockDuration }),
      ...(options.stalledInterval !== undefined && { stalledInterval: options.stalledInterval })
    })
    worker.on('error', error => { log.error({ err: loggable(error) }, 'inbox worker error') })
    // BullMQ types the job as possibly undefined, which it never is for a job the worker ran.
    worker.on('failed', (job: Job<InboxJobData> | undefined, error) => {
      const { data, attemptsMade, opts, stalledCounter, deferredFailure } = job!
      const event = eventOf(data)
      // A job that stalled more than maxStalledCount times carries BullMQ's deferred failure, and
      // the worker that takes it next fails it without running it: no run of its handlers failed,
      // and the attempt BullMQ counts for it is none of theirs.
      if (deferredFailure !== undefined) {
        const attempts = attemptsMade - 1
        deadLetter(event, new Error(`stalled ${stalledCounter} times, more than maxStalledCount (${maxStalledCount}): its workers died mid-run (BullMQ: ${error.message})`, { cause: error }),
          { reason: 'stalled', attempts, stalls: stalledCounter },
          `its runs stalled ${stalledCounter} times (their workers died), more than maxStalledCount ${maxStalledCount}; ${attempts} of ${opts.attempts!} attempts failed`)
        return
      }
      emit('failed', event, error)
      // attempts is always set: the inbox gives every job its own.
      if (isUnrecoverable(error)) {
        deadLetter(event, error, { reason: 'unrecoverable', attempts: attemptsMade, stalls: stalledCounter }, `a handler threw UnrecoverableError, at attempt ${attemptsMade} of ${opts.attempts!}`)
      } else if (attemptsMade >= opts.attempts!) {
        deadLetter(event, error, { reason: 'failed', attempts: attemptsMade, stalls: stalledCounter }, `every attempt failed (${attemptsMade} of ${opts.attempts!})`)
      } else {
        traced?.retried(event)
      }
    })
    // BullMQ trims finished jobs by age only when another job finishes: on a queue that went
    // quiet, an EDIS event's done job would outlive its window and swallow the same id's next,
    // legitimate, event. The worker trims too, hourly.
    const clean = (): void => {
      inbox.queue().then(async queue => {
        for (const [state, keep] of [['completed', settings.removeOnComplete], ['failed', settings.removeOnFail]] as const) {
          if ('age' in keep) await queue.clean(keep.age * 1000, 1000, state)
        }
      }).catch((error: unknown) => { log.warn({ err: loggable(error) }, 'could not trim the inbox\'s finished jobs') })
    }
    clean()
    cleaner = setInterval(clean, HOUR).unref()
    fanOut = startFanOut(inbox, {
      claimIdle: options.lockDuration ?? LOCK_DURATION, claimInterval: options.stalledInterval ?? STALLED_INTERVAL, log, failed: () => { loaded?.fanOutFailed() }
    })
    return worker
  })
  Object.defineProperty(emitter, 'worker', { value: worker })
  let closing: Promise<void> | undefined
  emitter.close = async () => {
    closing ??= worker.then(async worker => {
      clearInterval(cleaner)
      // No new jobs, from the stream or from BullMQ: what then finishes is all the worker took.
      await fanOut.close()
      await worker.pause(true)
      // Its handlers run to their end, however long, and their outcomes are recorded (retried as
      // long as their claims last).
      await delivery.drain(Infinity)
      stopObserving?.()
      // BullMQ's graceful close waits for Redis to take the jobs' outcomes and its connection's
      // QUIT, which, Redis being unreachable, it never does: then the close is forced. A job whose
      // outcome did not land stays active, and is taken again as stalled once Redis is back; its
      // claim, done or held, keeps the handlers from running twice.
      await worker.close(inbox.connection.status !== 'ready')
      claims.disconnect()
    })
    await closing
  }
  return emitter
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
