import type { FastifyBaseLogger } from 'fastify'
import { ClaimLostError } from '../errors.js'
import { loggable } from '../loggable-error.js'
import type { DeliveryContext } from '../handler-context.js'
import { isPromiseLike, type MaybePromise } from '../maybe-promise.js'
import type { IdempotencyStore } from './store.js'

/** A claim this process holds while its handlers run, or while their success is being recorded. */
export interface HeldClaim {
  readonly key: string
  readonly owner: string
  /**
   * When the claim expires in the store, as far as this process can tell: the time the claim or
   * its last successful refresh was sent, plus claimTtl. Never later than the store's own expiry.
   * The guard reads it once the handlers settle, since a frozen process runs no refresh timer to
   * find the claim lost.
   */
  expires: number
  /** Set once the claim can no longer be vouched for; nothing is recorded for it after that. */
  lost: boolean
  readonly context: DeliveryContext
  /** A refresh is on its way or being retried: the next tick leaves it alone. */
  refreshing: boolean
}

/**
 * The claims of this process, refreshed together by one timer (every third of claimTtl) while
 * there are any, in one call of the store per tick (refreshMany, or refresh for each at once). A refresh that fails is retried at once and then every `retryInterval` until the
 * claim's own expiry; a refresh answered `false` (the claim is gone or another's), or no success
 * before the expiry, means the claim is lost: logged at error level with the event id, and the
 * handlers' signal aborted. So a claim survives a store outage of at least 2/3 of claimTtl,
 * whatever the phase of the outage against the refresh timer.
 */
export class HeldClaims {
  readonly #store: IdempotencyStore
  readonly #claimTtl: number
  readonly #log: FastifyBaseLogger
  readonly #held = new Set<HeldClaim>()
  #timer: NodeJS.Timeout | undefined
  readonly retryInterval: number

  constructor (store: IdempotencyStore, claimTtl: number, log: FastifyBaseLogger) {
    this.#store = store
    this.#claimTtl = claimTtl
    this.#log = log
    this.retryInterval = Math.max(1, Math.min(100, Math.floor(claimTtl / 10)))
  }

  /** Holds a claim that was sent at `sentAt`, until `release(held)`. */
  hold (key: string, owner: string, sentAt: number, context: DeliveryContext): HeldClaim {
    const held: HeldClaim = { key, owner, expires: sentAt + this.#claimTtl, lost: false, context, refreshing: false }
    this.#held.add(held)
    // Idle, the timer stops itself (see #tick) rather than being stopped and started per event.
    this.#timer ??= setInterval(() => { this.#tick() }, this.#claimTtl / 3).unref()
    return held
  }

  /** How many claims are held now (telemetry reports it). */
  get size (): number {
    return this.#held.size
  }

  /** No longer refreshed: its handlers are done, and it was recorded or released (or lost). */
  release (held: HeldClaim): void {
    this.#held.delete(held)
  }

  /** Every held claim is given up at once, as lost: the app is closing and the store goes away. */
  abandonAll (reason: Error): void {
    for (const held of this.#held) this.#lose(held, reason, 'the app closed while its handlers ran; a redelivery may run this event again')
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  #tick (): void {
    if (this.#held.size === 0) {
      clearInterval(this.#timer)
      this.#timer = undefined
      return
    }
    const due: HeldClaim[] = []
    for (const held of this.#held) if (!held.refreshing) due.push(held)
    if (due.length > 0) this.#refresh(due)
  }

  // One call for every claim due: the store's refreshMany, or its refresh for each, all at once.
  #refresh (due: HeldClaim[], retries = 0): void {
    const group = due.filter(held => !held.lost && this.#held.has(held))
    if (group.length === 0) return
    const store = this.#store
    const sentAt = Date.now()
    // A store without refresh cannot extend a claim: it is lost once its first ttl is over.
    if (store.refreshMany === undefined && store.refresh === undefined) {
      for (const held of group) {
        if (sentAt >= held.expires) this.#lose(held, new ClaimLostError(), 'the claim expired while its handlers ran (the store has no refresh)')
      }
      return
    }
    for (const held of group) held.refreshing = true
    let answer
    try {
      answer = store.refreshMany !== undefined ? store.refreshMany(group, this.#claimTtl) : refreshEach(store, group, this.#claimTtl)
    } catch (error) {
      this.#failed(group, error, retries)
      return
    }
    if (!isPromiseLike(answer)) {
      this.#refreshed(group, answer, sentAt)
      return
    }
    Promise.resolve(answer).then(
      extended => { this.#refreshed(group, extended, sentAt) },
      (error: unknown) => { this.#failed(group, error, retries) }
    )
  }

  #refreshed (group: HeldClaim[], extended: ReadonlyArray<boolean | void>, sentAt: number): void {
    for (let i = 0; i < group.length; i++) {
      const held = group[i]!
      held.refreshing = false
      if (held.lost || !this.#held.has(held)) continue
      if (extended[i] === false) {
        this.#lose(held, new ClaimLostError(), 'the claim was gone or another delivery\'s when it was refreshed; another delivery may run this event')
        continue
      }
      held.expires = sentAt + this.#claimTtl
    }
  }

  // Retried at once, then every retryInterval, while a retry can still land before the expiry.
  #failed (group: HeldClaim[], error: unknown, retries: number): void {
    const delay = retries === 0 ? 0 : this.retryInterval
    const retry: HeldClaim[] = []
    for (const held of group) {
      if (held.lost || !this.#held.has(held)) continue
      if (Date.now() + delay >= held.expires) {
        this.#lose(held, new ClaimLostError({ cause: error }), 'the store could not be reached until the claim expired; another delivery may run this event')
        continue
      }
      this.#log.warn({ err: loggable(error), event: held.key }, 'could not refresh a claim; retrying until it expires')
      retry.push(held)
    }
    if (retry.length > 0) setTimeout(() => { this.#refresh(retry, retries + 1) }, delay).unref()
  }

  #lose (held: HeldClaim, reason: Error, why: string): void {
    held.lost = true
    held.refreshing = false
    this.#held.delete(held)
    this.#log.error({ event: held.key, err: loggable(reason) }, `lost the claim on an event: ${why}`)
    held.context.abort(reason)
  }
}

// A store without refreshMany: its refresh for every claim, sent together; an answer at once if
// every one came at once (a synchronous store), and a failure of any is a failure of them all.
function refreshEach (store: IdempotencyStore, group: HeldClaim[], ttl: number): MaybePromise<Array<boolean | void>> {
  const answers = group.map(held => store.refresh!(held.key, held.owner, ttl))
  return answers.some(isPromiseLike) ? Promise.all(answers) : answers as Array<boolean | void>
}
