import { CallbackEvents, subscribe } from './events.js'
import { loadTelemetry, resolveTelemetry, type TelemetryOptions } from './telemetry.js'
import type { WorkerInbox } from './inbox/backend.js'
import type { Inbox } from './inbox/inbox.js'
import { startInboxWorker, type InboxHandler, type InboxHandlers, type InboxWorker, type InboxWorkerSettings } from './inbox/worker.js'

export interface InboxWorkerOptions extends InboxWorkerSettings {
  handlers?: InboxHandlers
  /** Runs every event, whatever its name (a Voximplant type this version does not know too). */
  onAny?: InboxHandler
  /**
   * OpenTelemetry, as the plugin's option: each run in a span that continues the request's trace,
   * stored, retried and dead-lettered counted. Default: on when @opentelemetry/api is installed.
   */
  telemetry?: TelemetryOptions | false
}

/**
 * Runs an inbox's events, in any process: no Fastify needed. Each run goes through the claim
 * protocol on the inbox's Redis, so a job BullMQ runs twice (its worker stalled or died) still
 * succeeds once. A handler that throws makes the run fail and BullMQ retry it after its backoff;
 * one that throws `UnrecoverableError` sends the event to the dead letters at once.
 */
export function createInboxWorker (inbox: Inbox, options: InboxWorkerOptions = {}): InboxWorker {
  // The names and handlers are checked as the plugin's are; their types by InboxHandlers.
  const handlers = subscribe(new CallbackEvents(), options.handlers, options.onAny)
  return startInboxWorker(inbox as unknown as WorkerInbox, handlers, options, loadTelemetry(resolveTelemetry(options.telemetry)))
}
