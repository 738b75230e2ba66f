import type { AnyProviderCallbackEvent } from '../event-types.js'

/**
 * The request's trace context, as the app's telemetry gave it (InboxHooks.jobContext) and takes it
 * back in the worker (InboxHooks.runJob): opaque to the inbox, which only stores it with the job.
 */
export type TraceCarrier = object

/**
 * What a job holds: the event as handlers see it, `receivedAt` as an ISO string. Never a
 * credential: EDIS's `callback_user`/`callback_pw` are dropped before the event is made, and the
 * Authorization header is not part of it. BullMQ stores job data in clear text.
 */
export interface InboxJobData {
  name: string
  provider: AnyProviderCallbackEvent['provider']
  id: string
  payload: unknown
  receivedAt: string
  known: boolean
  /** The request's trace context (a W3C traceparent: ids only), for the worker's span; with telemetry only. */
  trace?: TraceCarrier
}

/** `receivedAt`: the event's, as an ISO string, which the caller makes once for a request's events (they share one Date): toISOString, about 1 µs, was nearly all of this function's cost. */
export function jobData (event: AnyProviderCallbackEvent, receivedAt: string, trace?: TraceCarrier): InboxJobData {
  const data: InboxJobData = { name: event.name, provider: event.provider, id: event.id, payload: event.payload, receivedAt, known: event.known }
  if (trace !== undefined) data.trace = trace
  return data
}

export function eventOf (data: InboxJobData): AnyProviderCallbackEvent {
  const { trace: _trace, ...event } = data
  return { ...event, receivedAt: new Date(data.receivedAt) } as AnyProviderCallbackEvent
}

// BullMQ refuses a custom job id with ':' (its key separator) or made of digits only (its own
// ids). Event ids are `<provider>:...`, so never digits only; ':' and '%' are percent-encoded,
// which keeps the id readable on a dashboard and reversible.
export function jobIdOf (eventId: string): string {
  return eventId.replaceAll('%', '%25').replaceAll(':', '%3A')
}

export function eventIdOf (jobId: string): string {
  return jobId.replaceAll('%3A', ':').replaceAll('%25', '%')
}
