import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { ClosingError } from '../errors.js'
import type { DeliveryContext } from '../handler-context.js'

/**
 * The deliveries still running, for the drain on close: only those that did not finish at once. A
 * batch is tracked whole (no context of its own), so the drain waits for its next items too.
 */
export class Running {
  readonly #running = new Map<Promise<unknown>, DeliveryContext | undefined>()

  track<T> (work: Promise<T>, context?: DeliveryContext): Promise<T> {
    this.#running.set(work, context)
    work.finally(() => { this.#running.delete(work) }).catch(() => {})
    return work
  }

  /**
   * Waits for every delivery still running for up to `grace` ms (Infinity: until they end); then
   * aborts the signals of those still running.
   */
  async drain (grace: number, log: FastifyBaseLogger): Promise<void> {
    const running = this.#running
    const deadline = Date.now() + grace
    // Deliveries may start others (a batch's next item): wait until none is left, or time is up.
    while (running.size > 0 && Date.now() < deadline) {
      const settled = Promise.allSettled(running.keys())
      // Unbounded, no timer: Infinity would overflow setTimeout into a 1 ms wake-up loop.
      await (grace === Infinity ? settled : Promise.race([settled, sleep(deadline - Date.now(), undefined, { ref: false })]))
    }
    if (running.size === 0) return
    log.warn({ events: running.size, grace }, 'closing with callback handlers still running; their signals are aborted')
    for (const context of running.values()) context?.abort(new ClosingError())
  }
}
