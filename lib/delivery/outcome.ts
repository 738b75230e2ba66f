import type { FastifyRequest } from 'fastify'
import type { AnyProviderCallbackEvent } from '../event-types.js'
import type { DeliveryContext } from '../handler-context.js'
import type { MaybePromise } from '../maybe-promise.js'

/** What became of one event; a route's answer is the worst of its events'. */
export type Outcome = 'delivered' | 'duplicate' | 'in-flight' | 'failed' | 'unavailable' | 'lost'

/**
 * What a delivery needs of the request that brought its events: where to log. A route passes its
 * FastifyRequest (handlers then get it); an inbox's worker, which has no request, passes its logger.
 */
export type DeliveryRequest = Pick<FastifyRequest, 'log'>

/**
 * Delivers one event of a provider, with that provider's deduplication window; an event of a type
 * this version does not know (`event.known` false) only to onAny listeners. The outcome is
 * given at once when the store and the handlers answered synchronously (the memory store and a
 * handler that returns no promise): a batch then costs no turn of the event loop per item.
 */
export type Deliver = (event: AnyProviderCallbackEvent, request: DeliveryRequest) => MaybePromise<Outcome>

/**
 * Delivers a batch's events (a Voximplant batch) in order, each item's handlers once the previous
 * item's settled; its outcome is the worst of its events'. The events are claimed together (one
 * call of the store), and each item's success or failure is sent to the store as soon as its
 * handlers settle, without waiting for it before the next item; the outcome comes once the store
 * acknowledged them all.
 */
export type DeliverBatch = (events: readonly AnyProviderCallbackEvent[], request: DeliveryRequest) => MaybePromise<Outcome>

/**
 * Wraps each event's delivery, in a batch too (telemetry's span around it): `run` runs the event's
 * part (its handlers and their record, or what its claim found) and gives its outcome.
 */
export type ObserveDelivery = (event: AnyProviderCallbackEvent, request: DeliveryRequest, run: () => MaybePromise<Outcome>) => MaybePromise<Outcome>

/** The handlers a delivery runs: the app's (CallbackEvents), or an inbox worker's. */
export interface Handlers {
  /** Whether anything listens for the event: nothing is claimed or run for events nobody reads. */
  hasListeners(event: AnyProviderCallbackEvent): boolean
  /**
   * Runs every handler of the event and waits for them: true when all succeeded. A failure is the
   * implementation's to log; it never throws. Given at once when no handler returned a promise.
   */
  deliver(event: AnyProviderCallbackEvent, request: DeliveryRequest, context: DeliveryContext): MaybePromise<boolean>
}

const SEVERITY: Record<Outcome, number> = { delivered: 0, duplicate: 0, 'in-flight': 1, failed: 2, lost: 3, unavailable: 4 }

/** The worse of two outcomes, for a batch's answer. */
export function worse (a: Outcome, b: Outcome): Outcome {
  return SEVERITY[b] > SEVERITY[a] ? b : a
}

export const outcomeOfRun = (succeeded: boolean): Outcome => succeeded ? 'delivered' : 'failed'

export const outcomeOfClaim = (claim: 'done' | 'in-flight'): Outcome => claim === 'done' ? 'duplicate' : 'in-flight'
