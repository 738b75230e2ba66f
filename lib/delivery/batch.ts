import { DeliveryContext } from '../handler-context.js'
import type { HeldClaims } from '../idempotency/claims.js'
import type { ClaimResult, IdempotencyStore } from '../idempotency/store.js'
import { isPromiseLike, quietly, then, type MaybePromise } from '../maybe-promise.js'
import type { Attempt } from './attempt.js'
import { outcomeOfClaim, worse, type ObserveDelivery, type Outcome } from './outcome.js'

/** What a batch's run needs of the claim protocol (GuardedDelivery, in deliveries.ts). */
export interface ItemGuard {
  readonly store: IdempotencyStore
  readonly claimTtl: number
  readonly claims: HeldClaims
  /** Runs a claimed item's handlers; `acknowledge` gets their record, perhaps still on its way. */
  runClaimed(attempt: Attempt, acknowledge: (outcome: MaybePromise<Outcome>) => void): Promise<void> | undefined
  /** Gives the claim back to the store. */
  release(attempt: Attempt): Promise<void> | undefined
  /** What an item whose claim the store could not answer becomes (fail-open runs it unguarded). */
  unreachable(error: unknown, attempt: Attempt): MaybePromise<Outcome>
  track<T>(work: Promise<T>): Promise<T>
}

/** A claim the store could not answer: the store could not be reached. */
export class ClaimFailure {
  constructor (readonly cause: unknown) {}
}
export type Claimed = ClaimResult | ClaimFailure

/**
 * Every claim of a batch in one call: the store's claimMany, or its claim for each at once. With
 * claimMany a failure is the whole batch's (whichever keys it took are given back); claim by claim,
 * each item's own, so the items before the first that failed still run, as they did one by one.
 */
export function claimAll ({ store, claimTtl }: ItemGuard, attempts: readonly Attempt[]): MaybePromise<Claimed[]> {
  if (store.claimMany !== undefined) {
    const keys = attempts.map(({ event, owner }) => ({ key: event.id, owner }))
    // Quietly: the store is most likely out of reach, which the first item's 503 already logs.
    const failed = (error: unknown): Claimed[] => {
      for (const { key, owner } of keys) quietly(() => store.release(key, owner), () => {})
      return attempts.map(() => new ClaimFailure(error))
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
  for (const { event, owner } of attempts) {
    let answer: MaybePromise<Claimed>
    try {
      answer = store.claim(event.id, owner, claimTtl)
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

/**
 * A batch's items, in order, once its claims are in: each item's handlers start once the previous
 * item's settled; its record goes to the store meanwhile, and the outcome waits for all of them.
 * With an observer, each item's part (handlers and record) is observed as a whole.
 */
export class BatchRun {
  readonly #guard: ItemGuard
  readonly #attempts: readonly Attempt[]
  readonly #claimed: readonly Claimed[]
  readonly #observe: ObserveDelivery | undefined
  #outcome: Outcome = 'delivered'
  // The records are not tracked one by one: the batch is, and it waits for them all.
  readonly #records: Array<Promise<Outcome>> = []
  #holding = false

  constructor (guard: ItemGuard, attempts: readonly Attempt[], claimed: readonly Claimed[], observe: ObserveDelivery | undefined) {
    this.#guard = guard
    this.#attempts = attempts
    this.#claimed = claimed
    this.#observe = observe
  }

  run (): MaybePromise<Outcome> {
    const delivered = this.#from(0)
    return isPromiseLike(delivered) ? this.#guard.track(Promise.resolve(delivered)) : delivered
  }

  readonly #acknowledge = (recorded: MaybePromise<Outcome>): void => {
    if (isPromiseLike(recorded)) this.#records.push(Promise.resolve(recorded))
    else this.#outcome = worse(this.#outcome, recorded)
  }

  #from (start: number): MaybePromise<Outcome> {
    for (let i = start; i < this.#attempts.length; i++) {
      const claim = this.#claimed[i]!
      const attempt = this.#attempts[i]!
      if (claim instanceof ClaimFailure) {
        const fallback = this.#observed(attempt, () => this.#guard.unreachable(claim.cause, attempt))
        if (fallback === 'unavailable') {
          this.#outcome = 'unavailable'
          this.#giveBack(i + 1)
          break
        }
        if (isPromiseLike(fallback)) {
          this.#holdTheRest(i + 1)
          return fallback.then(ran => {
            this.#outcome = worse(this.#outcome, ran)
            return this.#from(i + 1)
          })
        }
        this.#outcome = worse(this.#outcome, fallback)
      } else if (claim !== 'claimed') {
        this.#acknowledge(this.#observed(attempt, () => outcomeOfClaim(claim)))
      } else {
        const settled = this.#runItem(attempt)
        if (settled !== undefined) {
          this.#holdTheRest(i + 1)
          return settled.then(() => this.#from(i + 1))
        }
      }
    }
    const records = this.#records
    return records.length === 0 ? this.#outcome : Promise.all(records).then(all => all.reduce(worse, this.#outcome))
  }

  #observed (attempt: Attempt, run: () => MaybePromise<Outcome>): MaybePromise<Outcome> {
    return this.#observe === undefined ? run() : this.#observe(attempt.event, attempt.request, run)
  }

  // A claimed item's handlers, and their record acknowledged; a promise while the handlers run.
  #runItem (attempt: Attempt): Promise<void> | undefined {
    const observe = this.#observe
    if (observe === undefined) return this.#guard.runClaimed(attempt, this.#acknowledge)
    let settled = undefined as Promise<void> | undefined
    this.#acknowledge(observe(attempt.event, attempt.request, () => {
      let recorded: MaybePromise<Outcome> = 'delivered'
      settled = this.#guard.runClaimed(attempt, outcome => { recorded = outcome })
      return settled === undefined ? recorded : settled.then(() => recorded)
    }))
    return settled
  }

  // The claims of the items still waiting, held (so refreshed) from the first item whose handlers
  // did not finish at once: until then no time passed that a claim could outlive.
  #holdTheRest (from: number): void {
    if (this.#holding) return
    this.#holding = true
    for (let i = from; i < this.#attempts.length; i++) {
      const attempt = this.#attempts[i]!
      if (this.#claimed[i] === 'claimed') attempt.held = this.#guard.claims.hold(attempt.event.id, attempt.owner, attempt.sentAt, new DeliveryContext())
    }
  }

  // A store that cannot be reached stops the batch: the items after give their claims back.
  #giveBack (from: number): void {
    for (let i = from; i < this.#attempts.length; i++) {
      if (this.#claimed[i] !== 'claimed') continue
      const attempt = this.#attempts[i]!
      if (attempt.held !== undefined) this.#guard.claims.release(attempt.held)
      this.#acknowledge(then(this.#guard.release(attempt), () => 'unavailable'))
    }
  }
}
