import type { DeliveryRequest, Outcome } from './outcome.js'
import { HandlerTimeoutError } from '../errors.js'
import { isPromiseLike, type MaybePromise } from '../maybe-promise.js'

/**
 * What a route answers with, or, once `timeout` ms have passed with handlers still running, a 503
 * with Retry-After. The handlers are not stopped (nothing can stop a promise): they go on, their
 * outcome is recorded, and the provider's retry finds the event in flight or done. Work that
 * finished at once costs no timer.
 */
function answerWithin<T> (work: MaybePromise<T>, timeout: number, retryAfter: number, request: DeliveryRequest): MaybePromise<T> {
  if (!isPromiseLike(work)) return work
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      request.log.warn({ timeout }, 'the callback\'s handlers are still running; answered 503 and let them go on')
      reject(Object.assign(new HandlerTimeoutError(), { retryAfter }))
    }, timeout)
    // Settling after the timeout changes nothing; the timer goes however the work ends.
    work.then(resolve, reject).finally(() => { clearTimeout(timer) })
  })
}

/** `deliver`, its answer bounded by `timeout` ms (undefined: unbounded, `deliver` itself). */
export function answeredWithin<Events> (
  deliver: (events: Events, request: DeliveryRequest) => MaybePromise<Outcome>, timeout: number | undefined, retryAfter: number
): (events: Events, request: DeliveryRequest) => MaybePromise<Outcome> {
  if (timeout === undefined) return deliver
  return (events, request) => answerWithin(deliver(events, request), timeout, retryAfter, request)
}
