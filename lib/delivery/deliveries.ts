import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { ClaimLostError, ClosingError } from '../errors.js'
import type { AnyProviderCallbackEvent } from '../event-types.js'
import { DeliveryContext } from '../handler-context.js'
import { HeldClaims, type HeldClaim } from '../idempotency/claims.js'
import type { ClaimResult, IdempotencyStore, StoreTransaction, TransactionalStore } from '../idempotency/store.js'
import { loggable } from '../loggable-error.js'
import { isPromiseLike, quietly, then, type MaybePromise } from '../maybe-promise.js'
import { newAttempt, type Attempt } from './attempt.js'
import { BatchRun, claimAll, type ItemGuard } from './batch.js'
import {
  outcomeOfClaim, outcomeOfRun, worse, type Deliver, type DeliverBatch, type DeliveryRequest, type Handlers, type ObserveDelivery, type Outcome
} from './outcome.js'
import { Running } from './running.js'

export interface IdempotencySettings {
  store: IdempotencyStore
  /** How long a claim lives unless refreshed: how soon a crashed replica's event can run elsewhere. */
  claimTtl: number
  /** Run handlers unguarded when the store cannot be reached, instead of answering 503. */
  failOpen: boolean
  /** The handlers' writes and the done mark in one transaction of the store's (a TransactionalStore). */
  transactional?: boolean
}

/** This plugin instance's deliveries (or an inbox worker's): one per provider's window, and the drain on close. */
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
export function deliveries (handlers: Handlers, settings: IdempotencySettings | undefined, log: FastifyBaseLogger): Deliveries {
  const running = new Running()
  if (settings === undefined) return unguarded(handlers, running, log)
  const guard = new GuardedDelivery(handlers, settings, running, log)
  const withWindow = (window: number, observe?: ObserveDelivery): Deliver =>
    observed((event, request) => guard.deliver(event, window, request), observe)
  const batchWithWindow = (window: number, observe?: ObserveDelivery): DeliverBatch => {
    const deliver = withWindow(window, observe)
    return (items, request) => {
      // Nothing listens: nothing to run, so nothing to remember (an observer still sees the event).
      const batch: AnyProviderCallbackEvent[] = []
      for (const event of items) {
        if (handlers.hasListeners(event)) batch.push(event)
        else if (observe !== undefined) observe(event, request, () => 'delivered')
      }
      if (batch.length <= 1) return batch.length === 0 ? 'delivered' : deliver(batch[0]!, request)
      const sentAt = Date.now()
      const attempts = batch.map(event => newAttempt(event, window, request, sentAt))
      return then(claimAll(guard, attempts), claimed => new BatchRun(guard, attempts, claimed, observe).run())
    }
  }
  const drain = async (grace: number): Promise<void> => {
    await running.drain(grace, log)
    guard.claims.abandonAll(new ClosingError())
  }
  return { withWindow, batchWithWindow, drain, held: () => guard.claims.size }
}

// idempotency: false: the handlers run, nothing is claimed or recorded.
function unguarded (handlers: Handlers, running: Running, log: FastifyBaseLogger): Deliveries {
  // Nothing listens: nothing to run.
  const deliver: Deliver = (event, request) => handlers.hasListeners(event) ? runUnguarded(handlers, running, event, request) : 'delivered'
  const withWindow = (_window: number, observe?: ObserveDelivery): Deliver => observed(deliver, observe)
  const batchWithWindow = (window: number, observe?: ObserveDelivery): DeliverBatch => {
    const one = withWindow(window, observe)
    return (batch, request) => inOrder(batch, 0, 'delivered', one, request)
  }
  return { withWindow, batchWithWindow, drain: async grace => { await running.drain(grace, log) }, held: () => 0 }
}

function runUnguarded (handlers: Handlers, running: Running, event: AnyProviderCallbackEvent, request: DeliveryRequest): MaybePromise<Outcome> {
  const context = new DeliveryContext()
  const ran = handlers.deliver(event, request, context)
  return isPromiseLike(ran) ? running.track(ran.then(outcomeOfRun), context) : outcomeOfRun(ran)
}

// Events one after the other, each once the one before it settled; unguarded, nothing stops them.
function inOrder (batch: readonly AnyProviderCallbackEvent[], start: number, outcome: Outcome, deliver: Deliver, request: DeliveryRequest): MaybePromise<Outcome> {
  for (let i = start; i < batch.length; i++) {
    const delivered = deliver(batch[i]!, request)
    if (isPromiseLike(delivered)) return delivered.then(settled => inOrder(batch, i + 1, worse(outcome, settled), deliver, request))
    outcome = worse(outcome, delivered)
  }
  return outcome
}

function observed (deliver: Deliver, observe: ObserveDelivery | undefined): Deliver {
  return observe === undefined ? deliver : (event, request) => observe(event, request, () => deliver(event, request))
}

const OUTLIVED = 'its handlers settled after the claim expired; another delivery may have run this event'
const REFUSED = 'its transaction found the claim another delivery\'s, and was rolled back, its writes with it'
const NOT_OURS = 'the store found the claim gone or another delivery\'s when recording its success; another delivery may have run this event'

/**
 * The claim protocol around one event's handlers, each step working on the event's Attempt. Every
 * step answers at once when the store and the handlers did (the memory store, a handler that
 * returns no promise), so that a batch costs no turn of the event loop per item.
 */
export class GuardedDelivery implements ItemGuard {
  readonly store: IdempotencyStore
  readonly claimTtl: number
  readonly claims: HeldClaims
  readonly #failOpen: boolean
  readonly #transactional: TransactionalStore | undefined
  readonly #handlers: Handlers
  readonly #running: Running

  constructor (handlers: Handlers, { store, claimTtl, failOpen, transactional }: IdempotencySettings, running: Running, log: FastifyBaseLogger) {
    this.store = store
    this.claimTtl = claimTtl
    this.claims = new HeldClaims(store, claimTtl, log)
    this.#failOpen = failOpen
    this.#transactional = transactional === true ? store as TransactionalStore : undefined
    this.#handlers = handlers
    this.#running = running
  }

  /** Claims the event, runs its handlers, records their success or gives the claim back. */
  deliver (event: AnyProviderCallbackEvent, window: number, request: DeliveryRequest): MaybePromise<Outcome> {
    // Nothing listens: nothing to run, so nothing to remember.
    if (!this.#handlers.hasListeners(event)) return 'delivered'
    const attempt = newAttempt(event, window, request, Date.now())
    let claim
    try {
      claim = this.store.claim(event.id, attempt.owner, this.claimTtl)
    } catch (error) {
      return this.unreachable(error, attempt)
    }
    if (!isPromiseLike(claim)) return this.#afterClaim(attempt, claim)
    return Promise.resolve(claim).then(
      claimed => this.#afterClaim(attempt, claimed),
      error => this.unreachable(error, attempt)
    )
  }

  track<T> (work: Promise<T>): Promise<T> {
    return this.#running.track(work)
  }

  unreachable (error: unknown, { event, request }: Attempt): MaybePromise<Outcome> {
    request.log.error({ err: loggable(error), event: event.id }, 'the idempotency store did not take the claim')
    return this.#failOpen ? runUnguarded(this.#handlers, this.#running, event, request) : 'unavailable'
  }

  // A release that fails leaves the claim to expire, after which a redelivery runs the handlers.
  release ({ event, owner, request }: Attempt): Promise<void> | undefined {
    return quietly(() => this.store.release(event.id, owner), error => request.log.error({ err: loggable(error), event: event.id }, 'could not release a claim'))
  }

  /**
   * Runs a claimed event's handlers. Once they settle, `acknowledge` gets what recording them
   * gives (complete or release, perhaps still on its way to the store) at once: the caller goes on
   * without waiting for the store. A promise while the handlers run.
   */
  runClaimed (attempt: Attempt, acknowledge: (outcome: MaybePromise<Outcome>, context?: DeliveryContext) => void): Promise<void> | undefined {
    const { held, event } = attempt
    // Lost while it waited for its turn: it never ran, and will run on a redelivery.
    if (held?.lost === true) {
      acknowledge(then(this.release(attempt), () => 'lost'))
      return
    }
    // The last handler may have been removed while the claim was on its way: nothing runs, so
    // nothing may be recorded as done. The claim goes back, as if nobody had listened at all.
    if (!this.#handlers.hasListeners(event)) {
      if (held !== undefined) this.claims.release(held)
      acknowledge(then(this.release(attempt), () => 'delivered'))
      return
    }
    const context = held?.context ?? new DeliveryContext()
    if (this.#transactional !== undefined) return this.#running.track(this.#runInTransaction(attempt, this.#transactional, context, acknowledge), context)
    const ran = this.#handlers.deliver(event, attempt.request, context)
    // Only pending handlers are held (refreshed); one that finished at once has its deadline read
    // in #afterRun. Their record may still be pending (the store did not take it at once): the drain waits for it.
    if (!isPromiseLike(ran)) {
      acknowledge(this.#afterRun(attempt, ran, context), context)
      return
    }
    this.#hold(attempt, context)
    return this.#running.track(ran.then(succeeded => { acknowledge(this.#afterRun(attempt, succeeded, context), context) }), context)
  }

  // The handlers get a client inside an open transaction, and the done mark is written in it: their
  // writes and the mark commit together, or neither does. The claim is held (refreshed) from
  // before the transaction opens until it ended.
  async #runInTransaction (
    attempt: Attempt, store: TransactionalStore, context: DeliveryContext, acknowledge: (outcome: MaybePromise<Outcome>, context?: DeliveryContext) => void
  ): Promise<void> {
    const held = this.#hold(attempt, context)
    let transaction: StoreTransaction
    try {
      transaction = await store.begin()
    } catch (error) {
      this.claims.release(held)
      attempt.request.log.error({ err: loggable(error), event: attempt.event.id }, 'could not open a transaction for the handlers')
      acknowledge(then(this.release(attempt), () => 'unavailable'), context)
      return
    }
    context.tx = transaction.tx
    const ran = await this.#handlers.deliver(attempt.event, attempt.request, context)
    acknowledge(this.#commit(attempt, held, transaction, ran), context)
  }

  async #commit (attempt: Attempt, held: HeldClaim, transaction: StoreTransaction, ran: boolean): Promise<Outcome> {
    try {
      // Lost while the handlers ran (refused, or out of reach until it expired): rolled back
      // without asking, as the commit would most likely be refused anyway.
      if (held.lost || !ran) {
        await transaction.rollback()
        return await then(this.release(attempt), () => held.lost ? 'lost' : 'failed')
      }
      let committed
      try {
        committed = await transaction.commit(attempt.event.id, attempt.owner, attempt.window)
      } catch (error) {
        // Rolled back, or (the connection dropped during COMMIT) perhaps committed: the release
        // frees only a claim not done, so the redelivery finds the event done or runs it again.
        attempt.request.log.error({ err: loggable(error), event: attempt.event.id }, 'could not commit the handlers\' transaction')
        return await then(this.release(attempt), () => 'failed')
      }
      return committed ? 'delivered' : await this.#lostAfterRun(attempt, REFUSED)
    } finally {
      this.claims.release(held)
    }
  }

  #afterClaim (attempt: Attempt, claim: ClaimResult): MaybePromise<Outcome> {
    if (claim !== 'claimed') return outcomeOfClaim(claim)
    let outcome: MaybePromise<Outcome> = 'delivered'
    const settled = this.runClaimed(attempt, (recorded, context) => {
      outcome = context === undefined || !isPromiseLike(recorded) ? recorded : this.#running.track(Promise.resolve(recorded), context)
    })
    return settled === undefined ? outcome : settled.then(() => outcome)
  }

  #hold (attempt: Attempt, context: DeliveryContext): HeldClaim {
    attempt.held ??= this.claims.hold(attempt.event.id, attempt.owner, attempt.sentAt, context)
    return attempt.held
  }

  #afterRun (attempt: Attempt, ran: boolean, context: DeliveryContext): MaybePromise<Outcome> {
    const { held } = attempt
    // The claim was lost while the handlers ran: another delivery may have run the event, so
    // this run's success is not recorded. The release frees it early if it is still ours (it was
    // given up a little before its expiry), and does nothing to another owner's.
    if (held?.lost === true) return then(this.release(attempt), () => 'lost')
    if (!ran) {
      if (held !== undefined) this.claims.release(held)
      return then(this.release(attempt), () => 'failed')
    }
    // Handlers that settled past the claim's own expiry outlived it, whatever the refresh timer
    // found: a process frozen (a GC pause, SIGSTOP) or a synchronous handler longer than claimTtl
    // runs no timer meanwhile, and a store's complete may not check the owner.
    if (Date.now() >= (held === undefined ? attempt.sentAt + this.claimTtl : held.expires)) {
      if (held !== undefined) this.claims.release(held)
      return this.#lostAfterRun(attempt, OUTLIVED)
    }
    let completed
    try {
      completed = this.store.complete(attempt.event.id, attempt.owner, attempt.window)
    } catch (error) {
      return this.#record(attempt, this.#hold(attempt, context), error)
    }
    if (!isPromiseLike(completed)) {
      if (held !== undefined) this.claims.release(held)
      return completed === false ? this.#lostAfterRun(attempt, NOT_OURS) : 'delivered'
    }
    const keep = this.#hold(attempt, context)
    return Promise.resolve(completed).then(
      recorded => {
        this.claims.release(keep)
        return recorded === false ? this.#lostAfterRun(attempt, NOT_OURS) : 'delivered' as const
      },
      error => this.#record(attempt, keep, error)
    )
  }

  // The handlers succeeded, but the store did not take it: that must be recorded, or a redelivery
  // would run them again. While the claim is held (it is refreshed meanwhile) nobody else runs the
  // event, so the store is retried for as long as the claim lasts; once it is lost, nothing is
  // recorded, since another delivery may have run the event by then.
  async #record (attempt: Attempt, held: HeldClaim, error: unknown): Promise<Outcome> {
    attempt.request.log.warn({ err: loggable(error), event: held.key }, 'could not record a delivered event; retrying while its claim is held')
    try {
      for (;;) {
        await sleep(this.claims.retryInterval)
        if (held.lost) return 'lost'
        // The refresh timer may not have run (a process frozen past the expiry): the deadline is read here too.
        if (Date.now() >= held.expires) return await this.#lostAfterRun(attempt, OUTLIVED)
        let recorded
        try {
          recorded = await this.store.complete(held.key, held.owner, attempt.window)
        } catch {
          continue
        }
        return recorded === false ? await this.#lostAfterRun(attempt, NOT_OURS) : 'delivered'
      }
    } finally {
      this.claims.release(held)
    }
  }

  // A success that cannot be vouched for: another delivery may have run the event meanwhile, so
  // nothing is recorded; the redelivery the 503 asks for finds it done, or runs it.
  #lostAfterRun (attempt: Attempt, why: string): MaybePromise<Outcome> {
    attempt.request.log.error({ event: attempt.event.id, err: new ClaimLostError() }, `lost the claim on an event: ${why}`)
    return then(this.release(attempt), () => 'lost')
  }
}
