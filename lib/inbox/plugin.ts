import type { FastifyInstance } from 'fastify'
import type { DeliverBatch } from '../delivery/outcome.js'
import { InvalidOptionError } from '../errors.js'
import { loggable } from '../loggable-error.js'
import type { InboxHooks } from './hooks.js'
import type { StoringInbox } from './backend.js'
import type { Inbox } from './inbox.js'
import { startInboxWorker, type HandlerSource, type InboxWorker, type InboxWorkerSettings } from './worker.js'

/** The plugin's `worker` option: this process's worker's settings, or `false` for none here. */
export type InboxWorkerOption = boolean | Pick<InboxWorkerSettings, 'concurrency' | 'lockDuration' | 'stalledInterval' | 'maxStalledCount'>

/**
 * The plugin's side of an inbox: the routes' delivery, which stores a request's verified events
 * ('delivered' once Redis acknowledged them all, 'unavailable' if it did not), and (unless
 * `worker: false`) a worker in this process over the app's handlers, started once the app is
 * ready and closed with it.
 */
export function inboxDelivery (fastify: FastifyInstance, handlers: HandlerSource, inbox: Inbox, worker: InboxWorkerOption | undefined, hooks?: InboxHooks): DeliverBatch {
  if (typeof (inbox as unknown as Partial<StoringInbox>)?.enqueue !== 'function') throw new InvalidOptionError('inbox must be made by bullmqInbox({ connection }) or postgresInbox({ connection })')
  if (worker !== undefined && typeof worker !== 'boolean' && (typeof worker !== 'object' || worker === null)) {
    throw new InvalidOptionError('worker must be true, false or an object of worker options')
  }
  const bullmq = inbox as unknown as StoringInbox
  // Connected before the app listens, so that its first callback is stored, not a 503; a Redis
  // that is down does not stop the app from starting (its callbacks are 503s until it is back).
  fastify.addHook('onReady', async () => {
    await bullmq.connect().catch((error: unknown) => { fastify.log.error({ err: loggable(error) }, 'the inbox cannot reach Redis; callbacks are answered 503 until it can') })
  })
  if (worker !== false) {
    let running: InboxWorker | undefined
    fastify.addHook('onReady', async () => {
      running = startInboxWorker(bullmq, handlers, { ...(typeof worker === 'object' ? worker : {}), logger: fastify.log }, hooks)
      await running.worker
    })
    // Before the host's own onClose hooks, which close the Redis client the worker runs on.
    fastify.addHook('preClose', async () => { await running?.close() })
  }
  fastify.addHook('onClose', async () => { await bullmq.close() })
  return async (batch, request) => {
    try {
      // The request's trace context goes with the jobs: the worker's spans continue its trace.
      await bullmq.enqueue(batch, hooks?.jobContext())
      if (hooks !== undefined) for (const event of batch) hooks.stored(event)
      return 'delivered'
    } catch (error) {
      // Unreachable, too slow, or refusing (out of memory): the error, ours or Redis's, says which.
      request.log.error({ err: loggable(error), events: batch.length }, `the inbox cannot store the events: ${(error as Error).message}`)
      return 'unavailable'
    }
  }
}
