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

/**
 * A store whose done mark can be written inside a transaction of its own database, which the
 * handlers' writes share (`idempotency: { transactional: true }`): the event's effects and its
 * done mark then commit together or not at all. `postgresStore` is one.
 */
export interface TransactionalStore<Tx = unknown> extends IdempotencyStore {
  /** A transaction, open, for one event's handlers. Rejects when the database cannot be reached. */
  begin(): Promise<StoreTransaction<Tx>>
}

/** One event's transaction, open while its handlers run. */
export interface StoreTransaction<Tx = unknown> {
  /** What the handlers get as `context.tx`: a client inside the open transaction. */
  readonly tx: Tx
  /**
   * In the transaction: `key` done for `ttl`, if its claim is still `owner`'s; then commits.
   * `false`: the claim was another's (or gone), and nothing was committed. Rejects when it could
   * not tell: the transaction is then rolled back, or (the connection dropped during COMMIT) its fate
   * unknown to this process, which a redelivery finds out (done, or free to run again).
   */
  commit(key: string, owner: string, ttl: number): Promise<boolean>
  /** Rolls the handlers' writes back and ends the transaction. Never rejects. */
  rollback(): Promise<void>
}
