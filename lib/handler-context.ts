/** What a handler gets beside the event and the request. */
export interface HandlerContext {
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
export class DeliveryContext implements HandlerContext {
  #controller: AbortController | undefined
  #reason: unknown
  /** With `transactional`: the client inside the event's open transaction, once it is open. */
  tx: unknown = undefined

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
