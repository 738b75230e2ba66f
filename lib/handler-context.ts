/**
 * Types that depend on how the app runs its handlers, declared by the app for its whole program:
 * - `inbox: true`: its handlers run from an inbox, and their `request` is typed `undefined`, as it is at run time;
 * - `transaction: T`: `idempotency.transactional` is on, and each handler's context has `tx: T`,
 *   the client inside the event's transaction (for postgresStore, node-postgres's `PoolClient`).
 *
 * `declare module 'fastify-provider-callbacks' { interface ProviderCallbacksTypes { inbox: true, transaction: PoolClient } }`
 */
export interface ProviderCallbacksTypes {}

/**
 * With `transactional`: the client inside the event's open transaction. Write the event's effects
 * through it: they commit with its done mark, or not at all. Never commit or roll it back yourself.
 */
export interface TransactionContext<Tx> {
  readonly tx: Tx
}

/** What a handler gets beside the event and the request: `{ signal }`, and `tx` where the app declared transactions. */
export type HandlerContext = SignalContext & (ProviderCallbacksTypes extends { transaction: infer Tx } ? TransactionContext<Tx> : unknown)

export interface SignalContext {
  /**
   * Aborted when the plugin can no longer vouch for this run: its claim was lost (the store was
   * out of reach until the claim expired, or another delivery holds it now), or the app is closing
   * and its grace period ran out. `signal.reason` is a `ClaimLostError` or a `ClosingError`. Pass it
   * to `fetch` and the like, or check `signal.aborted` before an effect that must not happen twice.
   */
  readonly signal: AbortSignal
}

/**
 * One delivery's context. The AbortController is made the first time a handler reads `signal`,
 * so the events whose handlers never look at it (most of them) cost none.
 */
export class DeliveryContext implements SignalContext {
  #controller: AbortController | undefined
  #reason: unknown
  /**
   * With `transactional`: the client inside the event's open transaction, once it is open. `any`:
   * its type is the app's declaration (HandlerContext), which this class, compiled once, cannot know.
   */
  tx: any = undefined

  get signal (): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#reason !== undefined) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  abort (reason: Error): void {
    if (this.#reason !== undefined) return
    this.#reason = reason
    this.#controller?.abort(reason)
  }
}
