import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { ClaimLostError, ClosingError, HandlerFailedError, InFlightError, StoreUnavailableError } from '../errors.js'
import { DeliveryContext } from '../handler-context.js'
import type { AnyProviderCallbackEvent, CallbackEvents } from '../events.js'
import { SUCCESS } from '../replies.js'
import { isPromiseLike, then, type MaybePromise } from '../maybe-promise.js'
import { HeldClaims, type HeldClaim } from './claims.js'
import type { ClaimResult, IdempotencyStore } from './store.js'

export interface IdempotencySettings {
  store: IdempotencyStore
  /** How long a claim lives unless refreshed: how soon a crashed replica's event can run elsewhere. */
  claimTtl: number
  /** Run handlers unguarded when the store cannot be reached, instead of answering 503. */
  failOpen: boolean
}

/** What became of one event; a route's answer is the worst of its events'. */
export type Outcome = 'delivered' | 'duplicate' | 'in-flight' | 'failed' | 'unavailable' | 'lost'

/**
 * Delivers one event of a provider, with that provider's deduplication window; an event of a type
 * this version does not know (`event.known` false) only to onAny listeners. The outcome is
 * given at once when the store and the handlers answered synchronously (the memory store and a
 * handler that returns no promise): a batch then costs no turn of the event loop per item.
 */
export type Deliver = (event: AnyProviderCallbackEvent, request: FastifyRequest) => MaybePromise<Outcome>

// Claim owners: unique to a delivery attempt, across processes.
const PROCESS = randomUUID()
let attempts = 0

/** This plugin instance's deliveries: one per provider's window, and the drain on close. */
export interface Deliveries {
  /** Delivers events with this deduplication window (a provider's). */
  withWindow(window: number): Deliver
  /**
   * Waits for every delivery still running (handlers past handlerTimeout, successes still being
   * recorded) for up to `grace` ms; then aborts the signals of those still running and gives up
   * their claims, before the host's store client goes away.
   */
  drain(grace: number): Promise<void>
  /** How many claims this process holds now, while their handlers run (0 without idempotency). */
  held(): number
}

/**
 * Runs an event's handlers at most once to success, whatever the redeliveries and replicas:
 * claim -> handlers (the claim refreshed meanwhile) -> complete, or release on failure.
 * Without settings (idempotency: false), it only runs the handlers.
 */
export function deliveries (events: CallbackEvents, settings: IdempotencySettings | undefined, log: FastifyBaseLogger): Deliveries {
  // What is still running, for the drain on close; only deliveries that did not finish at once.
  const running = new Map<Promise<Outcome>, DeliveryContext>()
  const track = (work: Promise<Outcome>, context: DeliveryContext): Promise<Outcome> => {
    running.set(work, context)
    work.finally(() => { running.delete(work) }).catch(() => {})
    return work
  }
  // The drain gives up the claims still held; there are none without idempotency.
  let heldClaims: HeldClaims | undefined
  const held = (): number => heldClaims?.size ?? 0

  const runUnguarded: Deliver = (event, request) => {
    const context = new DeliveryContext()
    const ran = events.deliver(event, request, context)
    return isPromiseLike(ran) ? track(ran.then(outcomeOfRun), context) : outcomeOfRun(ran)
  }

  const drain = async (grace: number): Promise<void> => {
    const deadline = Date.now() + grace
    // Deliveries may start others (a batch's next item): wait until none is left, or time is up.
    while (running.size > 0 && Date.now() < deadline) {
      const timer = sleep(deadline - Date.now(), undefined, { ref: false })
      await Promise.race([Promise.allSettled(running.keys()), timer])
    }
    if (running.size > 0) {
      log.warn({ events: running.size, grace }, 'closing with callback handlers still running; their signals are aborted')
      for (const context of running.values()) context.abort(new ClosingError())
    }
    heldClaims?.abandonAll(new ClosingError())
  }

  if (settings === undefined) {
    // Nothing listens: nothing to run.
    return { withWindow: () => (event, request) => events.hasListeners(event) ? runUnguarded(event, request) : 'delivered', drain, held }
  }
  const { store, claimTtl, failOpen } = settings
  const claims = heldClaims = new HeldClaims(store, claimTtl, log)

  const unreachable = (error: unknown, event: AnyProviderCallbackEvent, request: FastifyRequest): MaybePromise<Outcome> => {
    request.log.error({ err: error, event: event.id }, 'the idempotency store cannot be reached')
    return failOpen ? runUnguarded(event, request) : 'unavailable'
  }

  // A release that fails leaves the claim to expire, after which a redelivery runs the handlers.
  const release = (event: AnyProviderCallbackEvent, owner: string, request: FastifyRequest): Promise<void> | undefined =>
    attempt(() => store.release(event.id, owner), error => request.log.error({ err: error, event: event.id }, 'could not release a claim'))

  // The handlers succeeded, but the store did not take it: that must be recorded, or a redelivery
  // would run them again. While the claim is held (it is refreshed meanwhile) nobody else runs the
  // event, so the store is retried for as long as the claim lasts; once it is lost, nothing is
  // recorded, since another delivery may have run the event by then.
  const record = async (held: HeldClaim, window: number, request: FastifyRequest, error: unknown): Promise<Outcome> => {
    request.log.warn({ err: error, event: held.key }, 'could not record a delivered event; retrying while its claim is held')
    try {
      for (;;) {
        await sleep(claims.retryInterval)
        if (held.lost) return 'lost'
        try {
          await store.complete(held.key, held.owner, window)
          return 'delivered'
        } catch {}
      }
    } finally {
      claims.release(held)
    }
  }

  const afterRun = (ran: boolean, event: AnyProviderCallbackEvent, owner: string, sentAt: number, held: HeldClaim | undefined, window: number, request: FastifyRequest, context: DeliveryContext): MaybePromise<Outcome> => {
    // The claim was lost while the handlers ran: another delivery may have run the event, so
    // this run's success is not recorded. The release frees it early if it is still ours (it was
    // given up a little before its expiry), and does nothing to another owner's.
    if (held?.lost === true) return then(release(event, owner, request), () => 'lost')
    if (!ran) {
      if (held !== undefined) claims.release(held)
      return then(release(event, owner, request), () => 'failed')
    }
    let completed
    try {
      completed = store.complete(event.id, owner, window)
    } catch (error) {
      return record(held ?? claims.hold(event.id, owner, sentAt, context), window, request, error)
    }
    if (!isPromiseLike(completed)) {
      if (held !== undefined) claims.release(held)
      return 'delivered'
    }
    const keep = held ?? claims.hold(event.id, owner, sentAt, context)
    return Promise.resolve(completed).then(
      () => {
        claims.release(keep)
        return 'delivered' as const
      },
      error => record(keep, window, request, error)
    )
  }

  const afterClaim = (claim: ClaimResult, event: AnyProviderCallbackEvent, owner: string, sentAt: number, window: number, request: FastifyRequest): MaybePromise<Outcome> => {
    if (claim !== 'claimed') return claim === 'done' ? 'duplicate' : 'in-flight'
    // The last handler may have been removed while the claim was on its way: nothing runs, so
    // nothing may be recorded as done. The claim goes back, as if nobody had listened at all.
    if (!events.hasListeners(event)) return then(release(event, owner, request), () => 'delivered')
    const context = new DeliveryContext()
    const ran = events.deliver(event, request, context)
    // Handlers that finished at once cannot have outlived their claim; only pending ones are held.
    // Their record may still be pending (the store did not take it at once): the drain waits for it.
    if (!isPromiseLike(ran)) {
      const outcome = afterRun(ran, event, owner, sentAt, undefined, window, request, context)
      return isPromiseLike(outcome) ? track(Promise.resolve(outcome), context) : outcome
    }
    const held = claims.hold(event.id, owner, sentAt, context)
    return track(ran.then(succeeded => afterRun(succeeded, event, owner, sentAt, held, window, request, context)), context)
  }

  return {
    withWindow: window => function deliver (event, request) {
      // Nothing listens: nothing to run, so nothing to remember.
      if (!events.hasListeners(event)) return 'delivered'
      const owner = `${PROCESS}:${++attempts}`
      // The claim's expiry is counted from before it was sent: never later than the store's own.
      const sentAt = Date.now()
      let claim
      try {
        claim = store.claim(event.id, owner, claimTtl)
      } catch (error) {
        return unreachable(error, event, request)
      }
      if (!isPromiseLike(claim)) return afterClaim(claim, event, owner, sentAt, window, request)
      return Promise.resolve(claim).then(
        claimed => afterClaim(claimed, event, owner, sentAt, window, request),
        error => unreachable(error, event, request)
      )
    },
    drain,
    held
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

const outcomeOfRun = (succeeded: boolean): Outcome => succeeded ? 'delivered' : 'failed'

const SEVERITY: Record<Outcome, number> = { delivered: 0, duplicate: 0, 'in-flight': 1, failed: 2, lost: 3, unavailable: 4 }

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
      case 'lost': throw Object.assign(new ClaimLostError(), { retryAfter })
      case 'failed': throw new HandlerFailedError()
      case 'in-flight': throw Object.assign(new InFlightError(), { retryAfter })
    }
    return SUCCESS
  }
}
