import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { HandlerFailedError, InFlightError, StoreUnavailableError } from '../errors.js'
import type { AnyProviderCallbackEvent, CallbackEvents } from '../events.js'
import { SUCCESS } from '../replies.js'
import { isPromiseLike, then, type MaybePromise } from '../maybe-promise.js'
import type { ClaimResult, IdempotencyStore } from './store.js'

export interface IdempotencySettings {
  store: IdempotencyStore
  /** How long a claim lives unless refreshed: how soon a crashed replica's event can run elsewhere. */
  claimTtl: number
  /** Run handlers unguarded when the store cannot be reached, instead of answering 503. */
  failOpen: boolean
}

/** What became of one event; a route's answer is the worst of its events'. */
export type Outcome = 'delivered' | 'duplicate' | 'in-flight' | 'failed' | 'unavailable'

/**
 * Delivers one event of a provider, with that provider's deduplication window; an event of a type
 * this version does not know (`event.known` false) only to onAny listeners. The outcome is
 * given at once when the store and the handlers answered synchronously (the memory store and a
 * handler that returns no promise): a batch then costs no turn of the event loop per item.
 */
export type Deliver = (event: AnyProviderCallbackEvent, request: FastifyRequest) => MaybePromise<Outcome>

const RECORD_RETRY_INTERVAL = 100

// Claim owners: unique to a delivery attempt, across processes.
const PROCESS = randomUUID()
let attempts = 0

/**
 * Runs an event's handlers at most once to success, whatever the redeliveries and replicas:
 * claim -> handlers (the claim refreshed meanwhile) -> complete, or release on failure.
 * Without settings (idempotency: false), it only runs the handlers.
 */
export function deliverOnce (events: CallbackEvents, settings: IdempotencySettings | undefined, window: number, log: FastifyBaseLogger): Deliver {
  const runUnguarded: Deliver = (event, request) => then(events.deliver(event, request), outcomeOfRun)
  if (settings === undefined) {
    // Nothing listens: nothing to run.
    return (event, request) => events.hasListeners(event) ? runUnguarded(event, request) : 'delivered'
  }
  const { store, claimTtl, failOpen } = settings

  // The claims of handlers still running, refreshed together by one timer while there are any.
  const held = new Map<string, string>()
  let refresher: NodeJS.Timeout | undefined
  const refreshHeld = (): void => {
    // Idle: the timer stops itself, rather than being stopped and started again for every event.
    if (held.size === 0) {
      clearInterval(refresher)
      refresher = undefined
    }
    for (const [key, owner] of held) {
      attempt(() => store.refresh!(key, owner, claimTtl), error => log.warn({ err: error, event: key }, 'could not refresh a claim'))
    }
  }

  const unreachable = (error: unknown, event: AnyProviderCallbackEvent, request: FastifyRequest): MaybePromise<Outcome> => {
    request.log.error({ err: error, event: event.id }, 'the idempotency store cannot be reached')
    return failOpen ? runUnguarded(event, request) : 'unavailable'
  }

  // A release that fails leaves the claim to expire, after which a redelivery runs the handlers.
  const release = (event: AnyProviderCallbackEvent, owner: string, request: FastifyRequest): Promise<void> | undefined =>
    attempt(() => store.release(event.id, owner), error => request.log.error({ err: error, event: event.id }, 'could not release a claim'))

  const afterRun = (ran: boolean, event: AnyProviderCallbackEvent, owner: string, request: FastifyRequest): MaybePromise<Outcome> => {
    if (!ran) return then(release(event, owner, request), () => 'failed')
    let completed
    try {
      completed = store.complete(event.id, owner, window)
    } catch (error) {
      return record(store, event, owner, window, claimTtl, request, error)
    }
    if (!isPromiseLike(completed)) return 'delivered'
    return Promise.resolve(completed).then(() => 'delivered', error => record(store, event, owner, window, claimTtl, request, error))
  }

  const afterClaim = (claim: ClaimResult, event: AnyProviderCallbackEvent, owner: string, request: FastifyRequest): MaybePromise<Outcome> => {
    if (claim !== 'claimed') return claim === 'done' ? 'duplicate' : 'in-flight'
    // The last handler may have been removed while the claim was on its way: nothing runs, so
    // nothing may be recorded as done. The claim goes back, as if nobody had listened at all.
    if (!events.hasListeners(event)) return then(release(event, owner, request), () => 'delivered')
    const ran = events.deliver(event, request)
    // Handlers that finished at once cannot have outlived their claim; only pending ones are refreshed.
    if (!isPromiseLike(ran)) return afterRun(ran, event, owner, request)
    if (store.refresh !== undefined) {
      held.set(event.id, owner)
      refresher ??= setInterval(refreshHeld, claimTtl / 3).unref()
    }
    return ran.then(succeeded => {
      held.delete(event.id)
      return afterRun(succeeded, event, owner, request)
    })
  }

  return function deliver (event, request) {
    // Nothing listens: nothing to run, so nothing to remember.
    if (!events.hasListeners(event)) return 'delivered'
    const owner = `${PROCESS}:${++attempts}`
    let claim
    try {
      claim = store.claim(event.id, owner, claimTtl)
    } catch (error) {
      return unreachable(error, event, request)
    }
    if (!isPromiseLike(claim)) return afterClaim(claim, event, owner, request)
    return Promise.resolve(claim).then(
      claimed => afterClaim(claimed, event, owner, request),
      error => unreachable(error, event, request)
    )
  }
}

// Calls a store method whose failure is only logged, whether it throws or rejects.
function attempt (call: () => MaybePromise<void>, onError: (error: unknown) => void): Promise<void> | undefined {
  try {
    const result = call()
    if (isPromiseLike(result)) return Promise.resolve(result).catch(onError)
  } catch (error) {
    onError(error)
  }
}

// The handlers succeeded, but the store did not take it (`error`): that must be recorded, or a
// redelivery would run them again. While the claim lives, nobody else runs the event, so a store
// that is briefly down is retried until then.
async function record (
  store: IdempotencyStore, event: AnyProviderCallbackEvent, owner: string, window: number, claimTtl: number, request: FastifyRequest, error: unknown
): Promise<Outcome> {
  const deadline = Date.now() + claimTtl
  for (;;) {
    if (Date.now() + RECORD_RETRY_INTERVAL >= deadline) {
      request.log.error({ err: error, event: event.id }, 'could not record a delivered event; a redelivery may run it again')
      return 'unavailable'
    }
    await sleep(RECORD_RETRY_INTERVAL)
    try {
      await store.complete(event.id, owner, window)
      return 'delivered'
    } catch (retryError) {
      error = retryError
    }
  }
}

const outcomeOfRun = (succeeded: boolean): Outcome => succeeded ? 'delivered' : 'failed'

const SEVERITY: Record<Outcome, number> = { delivered: 0, duplicate: 0, 'in-flight': 1, failed: 2, unavailable: 3 }

/** The worse of two outcomes, for a batch's answer. */
export function worse (a: Outcome, b: Outcome): Outcome {
  return SEVERITY[b] > SEVERITY[a] ? b : a
}

/**
 * A route's answer to the worst outcome of its events: the seed's success, or the error it calls
 * for (a 409 or 503 with Retry-After, a 500), which makes the provider deliver again.
 */
export function answerFor (retryAfter: number): (outcome: Outcome) => typeof SUCCESS {
  return outcome => {
    switch (outcome) {
      case 'unavailable': throw Object.assign(new StoreUnavailableError(), { retryAfter })
      case 'failed': throw new HandlerFailedError()
      case 'in-flight': throw Object.assign(new InFlightError(), { retryAfter })
    }
    return SUCCESS
  }
}
