import type { MaybePromise } from '../maybe-promise.js'

/**
 * What a claim finds: nobody had the event, so the caller now runs it (`claimed`); another
 * delivery is running it (`in-flight`); it already ran to success (`done`).
 */
export type ClaimResult = 'claimed' | 'in-flight' | 'done'

/** One key of a batch, and the delivery attempt that claims or refreshes it. */
export interface KeyOwner {
  readonly key: string
  readonly owner: string
}

/**
 * Where the plugin records which events ran, so that each event's handlers run to success once,
 * across replicas and redeliveries. Keys are event ids (`voximplant:<account_id>:<callback_id>`,
 * `edis:<kvm>:<trigger_value>`); `owner` is a token unique to one delivery attempt; times are in
 * milliseconds. Every method may throw or reject when the store cannot be reached: the plugin then
 * answers 503 and runs no handler. A method may answer synchronously, as `memoryStore` does: the
 * plugin then spends no turn of the event loop on it. A store for PostgreSQL, DynamoDB or anything
 * else implements these (the batch ones are optional):
 */
export interface IdempotencyStore {
  /**
   * Atomically: if `key` is unknown or its claim expired, claim it for `owner` for `ttl` and
   * return 'claimed'; if it is done, 'done'; if another owner's claim is live, 'in-flight'.
   */
  claim(key: string, owner: string, ttl: number): MaybePromise<ClaimResult>
  /**
   * Extends `owner`'s live claim to `ttl` from now; called while a slow handler runs. Answers
   * `false` when the claim is gone or another owner's (it expired meanwhile): the plugin then knows
   * the claim is lost, aborts the handlers' signal and records nothing. `true` or nothing: extended.
   * Optional: without it a handler must finish within the claim's ttl, or a redelivery may run it again.
   */
  refresh?(key: string, owner: string, ttl: number): MaybePromise<boolean | void>
  /**
   * The handlers succeeded: if `owner`'s claim is still live, atomically replace it by `key` done
   * for `ttl` (the deduplication window). Answers `false`, recording nothing, when the claim is gone
   * or another owner's (it expired and another delivery may have run the event): the plugin then
   * logs the lost claim and answers 503. `true` or nothing: recorded. A store that records without
   * checking the owner still works, but a success that outlived its claim may then be recorded over
   * another delivery's run.
   */
  complete(key: string, owner: string, ttl: number): MaybePromise<boolean | void>
  /** The handlers failed: drop `owner`'s claim (and only its own), so a redelivery runs them. */
  release(key: string, owner: string): MaybePromise<void>
  /**
   * Optional: `claim` for every key of a batch (a Voximplant batch, each of its items a key), in as
   * few round trips as the store can, answered in the order given. Throwing or rejecting means none
   * could be vouched for: the plugin releases them all and answers 503. Without it the plugin calls
   * `claim` for every key at once, without waiting for one answer before the next call.
   */
  claimMany?(claims: readonly KeyOwner[], ttl: number): MaybePromise<ClaimResult[]>
  /**
   * Optional: `refresh` for every claim the plugin holds, once per refresh tick, answered in the
   * order given. Throwing or rejecting is a failed refresh of them all (retried, as for `refresh`).
   * Without it the plugin calls `refresh` for each (if the store has it).
   */
  refreshMany?(claims: readonly KeyOwner[], ttl: number): MaybePromise<Array<boolean | void>>
}
