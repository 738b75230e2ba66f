import type { JobsOptions, Queue } from 'bullmq'
import type { FastifyBaseLogger } from 'fastify'
import { loggable } from '../loggable-error.js'
import { jobIdOf, type InboxJobData } from './job.js'
import type { InboxConnection, InboxSettings } from './options.js'
import { abortable, eventsOf, StreamReader } from './stream.js'

/** What fanning out needs of the inbox (BullmqInbox is one). */
export interface FanOutInbox {
  readonly settings: InboxSettings
  readonly connection: InboxConnection
  /** The received stream's key. */
  readonly received: string
  /** The fail-fast client, for the commands that are not blocking reads. */
  commands(): InboxConnection
  queue(): Promise<Queue>
  /** `work` on the queue, bounded by addTimeout. */
  withQueue<T>(work: (queue: Queue) => Promise<T>): Promise<T>
}

/** Events waiting in the queue at or above which workers stop fanning out: they make jobs as fast as they run them, and a backlog stays in the stream, which costs no worker CPU. */
export const BACKLOG = 1000
/** ms a worker waits before it looks at the backlog again, or after Redis failed it. */
const PAUSE = 100
const RETRY = 1000
/** Events a worker makes jobs of in one go: BullMQ's cost per job is high enough to block the event loop for long. */
const FAN_OUT_CHUNK = 20

/** The one command fanOut sends the inbox's client itself (the connection's type names none). */
interface ScoreClient extends InboxConnection {
  // Scores as strings: on ioredis 5, and on 6 over RESP3 too.
  zmscore(key: string, ...members: string[]): Promise<Array<string | null>>
}

export interface FanOutOptions {
  /** ms an entry read and not acknowledged stays its reader's before another worker takes it: the worker's lockDuration. */
  claimIdle: number
  /** ms between two looks for such entries: the worker's stalledInterval. */
  claimInterval: number
  log: FastifyBaseLogger
  /** Called for each entry whose fan-out failed (it is taken again after claimIdle). */
  failed?: () => void
}

export interface FanOut {
  /** Stops reading; resolves once the entries being fanned out are done. */
  close(): Promise<void>
}

/**
 * A worker's reader of the received stream: takes entries (new ones, or those a dead worker left
 * idle past claimIdle), fans each out into a job per event (deduplicated by event id, so taking
 * one twice adds nothing), then acknowledges and deletes it.
 */
export function startFanOut (inbox: FanOutInbox, options: FanOutOptions): FanOut {
  const stopped = new AbortController()
  const stream = new StreamReader(inbox.connection, inbox.received, options, stopped.signal)
  // Until `ms` pass or the fan-out closes, whichever comes first.
  const pause = async (ms: number): Promise<void> => {
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        stopped.signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      stopped.signal.addEventListener('abort', done)
    })
  }
  const run = async (): Promise<void> => {
    while (!stopped.signal.aborted) {
      try {
        const queue = await abortable(stopped.signal, inbox.queue())
        if (await queue.getWaitingCount() >= BACKLOG) {
          await pause(PAUSE)
          continue
        }
        for (const [id, fields] of await stream.take()) {
          try {
            // An entry deleted since it was read (Redis 6.2 returns it without fields) has nothing left to fan out.
            if (fields !== null) await fanOut(inbox, eventsOf(fields))
            await stream.acknowledge(inbox.commands(), id)
          } catch (error) {
            // It stays pending, taken again after claimIdle (by this worker or another) for as long
            // as BullMQ refuses it: never lost, but its events run only once a human saw why, so
            // an error, and counted. The entries after it go on.
            options.log.error({ err: loggable(error), entry: id }, 'could not fan received events out into a job each; taken again after lockDuration')
            options.failed?.()
          }
        }
      } catch (error) {
        if (stopped.signal.aborted) break
        stream.regroup()
        options.log.warn({ err: loggable(error) }, 'could not read the received events; retried')
        await pause(RETRY)
      }
    }
  }
  const running = run()
  return {
    async close () {
      stopped.abort()
      stream.disconnect()
      await running
      await stream.removeConsumer(inbox.commands())
    }
  }
}

/**
 * Received events, each as a job of its own, deduplicated by event id: one already there is left
 * as it is, so a redelivery stores nothing new, unless it is a completed job older than its
 * provider's window, which is removed and added again: the event comes again legitimately (EDIS's
 * `edis:<kvm>:<trigger_value>` does), and BullMQ's trimming of finished jobs (when others finish,
 * 1000 at a time) cannot be relied on to have removed it. A few at a time (BullMQ's addBulk, one
 * pipeline each), so that a worker in the app's process leaves the event loop to its requests
 * between them; a worker that dies midway leaves the entry to be fanned out again, which adds
 * only what is missing.
 */
export async function fanOut (inbox: FanOutInbox, received: readonly InboxJobData[]): Promise<void> {
  const { attempts, backoff, removeOnComplete, removeOnFail, windows } = inbox.settings
  const jobs = (events: readonly InboxJobData[]): Array<{ name: string, data: InboxJobData, opts: JobsOptions }> => events.map(event => ({
    name: event.name,
    data: event,
    opts: { jobId: jobIdOf(event.id), attempts, backoff, removeOnComplete, removeOnFail }
  }))
  for (let start = 0; start < received.length; start += FAN_OUT_CHUNK) {
    const events = received.slice(start, start + FAN_OUT_CHUNK)
    await inbox.withQueue(async queue => {
      // When each event's job, if one is completed, finished (the completed set's score is its
      // finishedOn). Sent with the add, not before it: the common case, new events, waits for no
      // round trip more. An add never completes a job, so the order the two run in is no matter.
      const finished = (inbox.commands() as ScoreClient).zmscore(queue.keys.completed!, ...events.map(event => jobIdOf(event.id)))
      finished.catch(() => {})
      await queue.addBulk(jobs(events))
      const now = Date.now()
      const scores = await finished
      const stale = events.filter((event, i) => {
        const score = scores[i]
        return score != null && now - Number(score) >= windows[event.provider]
      })
      if (stale.length === 0) return
      // Removed whatever it is now: had it changed meanwhile (another worker renewed it), the
      // claim protocol still runs its handlers once.
      await Promise.all(stale.map(async event => await queue.remove(jobIdOf(event.id))))
      await queue.addBulk(jobs(stale))
    })
  }
}
