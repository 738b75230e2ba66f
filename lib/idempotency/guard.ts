import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { ClaimLostError, ClosingError, HandlerFailedError, InFlightError, StoreUnavailableError } from '../errors.js'
import { loggable } from '../loggable-error.js'
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

/**
 * Delivers a batch's events (a Voximplant batch) in order, each item's handlers once the previous
 * item's settled; its outcome is the worst of its events'. The events are claimed together (one
 * call of the store), and each item's success or failure is sent to the store as soon as its
 * handlers settle, without waiting for it before the next item; the outcome comes once the store
 * acknowledged them all.
 */
export type DeliverBatch = (events: readonly AnyProviderCallbackEvent[], request: FastifyRequest) => MaybePromise<Outcome>

/**
 * Wraps each event's delivery, in a batch too (telemetry's span around it): `run` runs the event's
 * part (its handlers and their record, or what its claim found) and gives its outcome.
 */
export type ObserveDelivery = (event: AnyProviderCallbackEvent, request: FastifyRequest, run: () => MaybePromise<Outcome>) => MaybePromise<Outcome>

// Claim owners: unique to a delivery attempt, across processes. 96 random bits name the process:
// short, so that a claim's value in Redis stays within one allocation (44 bytes).
const PROCESS = randomBytes(12).toString('base64url')
let attempts = 0

/** This plugin instance's deliveries: one per provider's window, and the drain on close. */
export interface Deliveries {
  /** Delivers events with this deduplication window (a provider's), one at a time. */
  withWindow(window: number, observe?: ObserveDelivery): Deliver
  /** Delivers batches of events with this deduplication window. */
  batchWithWindow(window: number, observe?: ObserveDelivery): DeliverBatch
  /**
   * Waits for every delivery still running (handlers past handlerTimeout, successes still being
   * recorded) for up to `grace` ms (Infinity: until they end); then aborts the signals of those
   * still running and gives up their claims, before the host's store client goes away.
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
  // A batch is tracked whole (no context of its own), so the drain waits for its next items too.
  const running = new Map<Promise<unknown>, DeliveryContext | undefined>()
  const track = <T>(work: Promise<T>, context?: DeliveryContext): Promise<T> => {
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
      const settled = Promise.allSettled(running.keys())
      // Unbounded, no timer: Infinity would overflow setTimeout into a 1 ms wake-up loop.
      await (grace === Infinity ? settled : Promise.race([settled, sleep(deadline - Date.now(), undefined, { ref: false })]))
    }
    if (running.size > 0) {
      log.warn({ events: running.size, grace }, 'closing with callback handlers still running; their signals are aborted')
      for (const context of running.values()) context?.abort(new ClosingError())
    }
    heldClaims?.abandonAll(new ClosingError())
  }

  if (settings === undefined) {
    // Nothing listens: nothing to run.
    const unguarded: Deliver = (event, request) => events.hasListeners(event) ? runUnguarded(event, request) : 'delivered'
    const withWindow = (_window: number, observe?: ObserveDelivery): Deliver => observed(unguarded, observe)
    return { withWindow, batchWithWindow: (window, observe) => (batch, request) => inOrder(batch, 0, 'delivered', withWindow(window, observe), request), drain, held }
  }
  const { store, claimTtl, failOpen } = settings
  const claims = heldClaims = new HeldClaims(store, claimTtl, log)

  const unreachable = (error: unknown, event: AnyProviderCallbackEvent, request: FastifyRequest): MaybePromise<Outcome> => {
    request.log.error({ err: loggable(error), event: event.id }, 'the idempotency store did not take the claim')
    return failOpen ? runUnguarded(event, request) : 'unavailable'
  }

  // A release that fails leaves the claim to expire, after which a redelivery runs the handlers.
  const release = (id: string, owner: string, request: FastifyRequest): Promise<void> | undefined =>
    attempt(() => store.release(id, owner), error => request.log.error({ err: loggable(error), event: id }, 'could not release a claim'))

  // A success that cannot be vouched for: another delivery may have run the event meanwhile, so
  // nothing is recorded; the redelivery the 503 asks for finds it done, or runs it.
  const lostAfterRun = (id: string, owner: string, request: FastifyRequest, why: string): MaybePromise<Outcome> => {
    request.log.error({ event: id, err: new ClaimLostError() }, `lost the claim on an event: ${why}`)
    return then(release(id, owner, request), () => 'lost')
  }
  const OUTLIVED = 'its handlers settled after the claim expired; another delivery may have run this event'
  const NOT_OURS = 'the store found the claim gone or another delivery\'s when recording its success; another delivery may have run this event'

  // The handlers succeeded, but the store did not take it: that must be recorded, or a redelivery
  // would run them again. While the claim is held (it is refreshed meanwhile) nobody else runs the
  // event, so the store is retried for as long as the claim lasts; once it is lost, nothing is
  // recorded, since another delivery may have run the event by then.
  const record = async (held: HeldClaim, window: number, request: FastifyRequest, error: unknown): Promise<Outcome> => {
    request.log.warn({ err: loggable(error), event: held.key }, 'could not record a delivered event; retrying while its claim is held')
    try {
      for (;;) {
        await sleep(claims.retryInterval)
        if (held.lost) return 'lost'
        // The refresh timer may not have run (a process frozen past the expiry): the deadline is read here too.
        if (Date.now() >= held.expires) return await lostAfterRun(held.key, held.owner, request, OUTLIVED)
        let recorded
        try {
          recorded = await store.complete(held.key, held.owner, window)
        } catch {
          continue
        }
        return recorded === false ? await lostAfterRun(held.key, held.owner, request, NOT_OURS) : 'delivered'
      }
    } finally {
      claims.release(held)
    }
  }

  const afterRun = (ran: boolean, event: AnyProviderCallbackEvent, owner: string, sentAt: number, held: HeldClaim | undefined, window: number, request: FastifyRequest, context: DeliveryContext): MaybePromise<Outcome> => {
    // The claim was lost while the handlers ran: another delivery may have run the event, so
    // this run's success is not recorded. The release frees it early if it is still ours (it was
    // given up a little before its expiry), and does nothing to another owner's.
    if (held?.lost === true) return then(release(event.id, owner, request), () => 'lost')
    if (!ran) {
      if (held !== undefined) claims.release(held)
      return then(release(event.id, owner, request), () => 'failed')
    }
    // Handlers that settled past the claim's own expiry outlived it, whatever the refresh timer
    // found: a process frozen (a GC pause, SIGSTOP) or a synchronous handler longer than claimTtl
    // runs no timer meanwhile, and a store's complete may not check the owner.
    if (Date.now() >= (held === undefined ? sentAt + claimTtl : held.expires)) {
      if (held !== undefined) claims.release(held)
      return lostAfterRun(event.id, owner, request, OUTLIVED)
    }
    let completed
    try {
      completed = store.complete(event.id, owner, window)
    } catch (error) {
      return record(held ?? claims.hold(event.id, owner, sentAt, context), window, request, error)
    }
    if (!isPromiseLike(completed)) {
      if (held !== undefined) claims.release(held)
      return completed === false ? lostAfterRun(event.id, owner, request, NOT_OURS) : 'delivered'
    }
    const keep = held ?? claims.hold(event.id, owner, sentAt, context)
    return Promise.resolve(completed).then(
      recorded => {
        claims.release(keep)
        return recorded === false ? lostAfterRun(event.id, owner, request, NOT_OURS) : 'delivered' as const
      },
      error => record(keep, window, request, error)
    )
  }

  // Runs a claimed event's handlers. Once they settle, `acknowledge` gets what recording them
  // gives (complete or release, perhaps still on its way to the store) at once: the caller goes on
  // without waiting for the store. Answers once the handlers settled. `held` is the claim of a
  // batch's item that waited for the items before it.
  const runClaimed = (
    event: AnyProviderCallbackEvent, owner: string, sentAt: number, window: number, request: FastifyRequest, held: HeldClaim | undefined,
    acknowledge: (outcome: MaybePromise<Outcome>, context?: DeliveryContext) => void
  ): Promise<void> | undefined => {
    // Lost while it waited for its turn: it never ran, and will run on a redelivery.
    if (held?.lost === true) {
      acknowledge(then(release(event.id, owner, request), () => 'lost'))
      return
    }
    // The last handler may have been removed while the claim was on its way: nothing runs, so
    // nothing may be recorded as done. The claim goes back, as if nobody had listened at all.
    if (!events.hasListeners(event)) {
      if (held !== undefined) claims.release(held)
      acknowledge(then(release(event.id, owner, request), () => 'delivered'))
      return
    }
    const context = held?.context ?? new DeliveryContext()
    const ran = events.deliver(event, request, context)
    // Only pending handlers are held (refreshed); one that finished at once has its deadline read
    // in afterRun. Their record may still be pending (the store did not take it at once): the drain waits for it.
    if (!isPromiseLike(ran)) {
      acknowledge(afterRun(ran, event, owner, sentAt, held, window, request, context), context)
      return
    }
    const keep = held ?? claims.hold(event.id, owner, sentAt, context)
    return track(ran.then(succeeded => { acknowledge(afterRun(succeeded, event, owner, sentAt, keep, window, request, context), context) }), context)
  }
  const tracked = (outcome: MaybePromise<Outcome>, context: DeliveryContext): MaybePromise<Outcome> =>
    isPromiseLike(outcome) ? track(Promise.resolve(outcome), context) : outcome

  const afterClaim = (claim: ClaimResult, event: AnyProviderCallbackEvent, owner: string, sentAt: number, window: number, request: FastifyRequest): MaybePromise<Outcome> => {
    if (claim !== 'claimed') return outcomeOfClaim(claim)
    let outcome: MaybePromise<Outcome> = 'delivered'
    const settled = runClaimed(event, owner, sentAt, window, request, undefined, (recorded, context) => {
      outcome = context === undefined ? recorded : tracked(recorded, context)
    })
    return settled === undefined ? outcome : settled.then(() => outcome)
  }

  const deliverOne = (window: number, observe?: ObserveDelivery): Deliver => observed(deliverUnobserved(window), observe)
  const deliverUnobserved = (window: number): Deliver => function deliver (event, request) {
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
  }

  // Every claim of a batch in one call: the store's claimMany, or its claim for each at once. With
  // claimMany a failure is the whole batch's (whichever keys it took are given back); claim by claim,
  // each item's own, so the items before the first that failed still run, as they did one by one.
  const claimAll = (batch: AnyProviderCallbackEvent[], owners: string[]): MaybePromise<Claimed[]> => {
    if (store.claimMany !== undefined) {
      const keys = batch.map((event, i) => ({ key: event.id, owner: owners[i]! }))
      // Quietly: the store is most likely out of reach, which the first item's 503 already logs.
      const failed = (error: unknown): Claimed[] => {
        for (const { key, owner } of keys) attempt(() => store.release(key, owner), () => {})
        return batch.map(() => new ClaimFailure(error))
      }
      let answers
      try {
        answers = store.claimMany(keys, claimTtl)
      } catch (error) {
        return failed(error)
      }
      return isPromiseLike(answers) ? Promise.resolve(answers).then(claimed => claimed, failed) : answers
    }
    const answers: Array<MaybePromise<Claimed>> = []
    let pending = false
    for (let i = 0; i < batch.length; i++) {
      let answer: MaybePromise<Claimed>
      try {
        answer = store.claim(batch[i]!.id, owners[i]!, claimTtl)
        if (isPromiseLike(answer)) {
          pending = true
          answer = Promise.resolve(answer).catch((error: unknown) => new ClaimFailure(error))
        }
      } catch (error) {
        answer = new ClaimFailure(error)
      }
      answers.push(answer)
    }
    return pending ? Promise.all(answers) : answers as Claimed[]
  }

  // A batch's items, in order, once its claims are in: each item's handlers start once the previous
  // item's settled; its record goes to the store meanwhile, and the outcome waits for all of them.
  // runClaimed, its part (handlers and record) observed as a whole when the batch is observed.
  const runObserved = (
    event: AnyProviderCallbackEvent, owner: string, sentAt: number, window: number, request: FastifyRequest, held: HeldClaim | undefined,
    acknowledge: (outcome: MaybePromise<Outcome>) => void, observe: ObserveDelivery | undefined
  ): Promise<void> | undefined => {
    if (observe === undefined) return runClaimed(event, owner, sentAt, window, request, held, acknowledge)
    const turn: { settled?: Promise<void> | undefined } = {}
    acknowledge(observe(event, request, () => {
      let recorded: MaybePromise<Outcome> = 'delivered'
      turn.settled = runClaimed(event, owner, sentAt, window, request, held, outcome => { recorded = outcome })
      return turn.settled === undefined ? recorded : turn.settled.then(() => recorded)
    }))
    return turn.settled
  }

  const runBatch = (
    batch: AnyProviderCallbackEvent[], owners: string[], claimed: Claimed[], sentAt: number, window: number, request: FastifyRequest, observe: ObserveDelivery | undefined
  ): MaybePromise<Outcome> => {
    const observeItem = (event: AnyProviderCallbackEvent, run: () => MaybePromise<Outcome>): MaybePromise<Outcome> =>
      observe === undefined ? run() : observe(event, request, run)
    let outcome: Outcome = 'delivered'
    // The records are not tracked one by one: the batch is, and it waits for them all.
    const records: Array<Promise<Outcome>> = []
    const acknowledge = (recorded: MaybePromise<Outcome>): void => {
      if (isPromiseLike(recorded)) records.push(Promise.resolve(recorded))
      else outcome = worse(outcome, recorded)
    }
    // The claims of the items still waiting, held (so refreshed) from the first item whose handlers
    // did not finish at once: until then no time passed that a claim could outlive.
    let held: Array<HeldClaim | undefined> | undefined
    const holdTheRest = (from: number): void => {
      if (held !== undefined) return
      held = []
      for (let i = from; i < batch.length; i++) {
        if (claimed[i] === 'claimed') held[i] = claims.hold(batch[i]!.id, owners[i]!, sentAt, new DeliveryContext())
      }
    }
    // A store that cannot be reached stops the batch: the items after give their claims back.
    const giveBack = (from: number): void => {
      for (let i = from; i < batch.length; i++) {
        if (claimed[i] !== 'claimed') continue
        const claim = held?.[i]
        if (claim !== undefined) claims.release(claim)
        acknowledge(then(release(batch[i]!.id, owners[i]!, request), () => 'unavailable'))
      }
    }
    const finish = (): MaybePromise<Outcome> => records.length === 0 ? outcome : Promise.all(records).then(all => all.reduce(worse, outcome))
    const from = (start: number): MaybePromise<Outcome> => {
      for (let i = start; i < batch.length; i++) {
        const claim = claimed[i]!
        const event = batch[i]!
        if (claim instanceof ClaimFailure) {
          const fallback = observeItem(event, () => unreachable(claim.cause, event, request))
          if (fallback === 'unavailable') {
            outcome = 'unavailable'
            giveBack(i + 1)
            break
          }
          if (isPromiseLike(fallback)) {
            holdTheRest(i + 1)
            return fallback.then(ran => {
              outcome = worse(outcome, ran)
              return from(i + 1)
            })
          }
          outcome = worse(outcome, fallback)
          continue
        }
        if (claim !== 'claimed') {
          acknowledge(observeItem(event, () => outcomeOfClaim(claim)))
          continue
        }
        const settled = runObserved(event, owners[i]!, sentAt, window, request, held?.[i], acknowledge, observe)
        if (settled !== undefined) {
          holdTheRest(i + 1)
          return settled.then(() => from(i + 1))
        }
      }
      return finish()
    }
    const delivered = from(0)
    return isPromiseLike(delivered) ? track(Promise.resolve(delivered)) : delivered
  }

  const deliverBatch = (window: number, observe?: ObserveDelivery): DeliverBatch => {
    const deliver = deliverOne(window, observe)
    return (items, request) => {
      // Nothing listens: nothing to run, so nothing to remember (an observer still sees the event).
      const batch: AnyProviderCallbackEvent[] = []
      for (const event of items) {
        if (events.hasListeners(event)) batch.push(event)
        else if (observe !== undefined) observe(event, request, () => 'delivered')
      }
      if (batch.length <= 1) return batch.length === 0 ? 'delivered' : deliver(batch[0]!, request)
      const owners = batch.map(() => `${PROCESS}:${++attempts}`)
      const sentAt = Date.now()
      return then(claimAll(batch, owners), claimed => runBatch(batch, owners, claimed, sentAt, window, request, observe))
    }
  }

  return { withWindow: deliverOne, batchWithWindow: deliverBatch, drain, held }
}

function observed (deliver: Deliver, observe: ObserveDelivery | undefined): Deliver {
  return observe === undefined ? deliver : (event, request) => observe(event, request, () => deliver(event, request))
}

/** A claim the store could not answer: the store could not be reached. */
class ClaimFailure {
  constructor (readonly cause: unknown) {}
}
type Claimed = ClaimResult | ClaimFailure

const outcomeOfClaim = (claim: 'done' | 'in-flight'): Outcome => claim === 'done' ? 'duplicate' : 'in-flight'

// Events one after the other, each once the one before it settled; unguarded, nothing stops them.
function inOrder (batch: readonly AnyProviderCallbackEvent[], start: number, outcome: Outcome, deliver: Deliver, request: FastifyRequest): MaybePromise<Outcome> {
  for (let i = start; i < batch.length; i++) {
    const delivered = deliver(batch[i]!, request)
    if (isPromiseLike(delivered)) return delivered.then(settled => inOrder(batch, i + 1, worse(outcome, settled), deliver, request))
    outcome = worse(outcome, delivered)
  }
  return outcome
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
