import type { Queue } from 'bullmq'

/**
 * An inbox's BullMQ Queue, made on first use and kept once it started. One that could not start
 * (its storage was down; its start-up failed after it connected) BullMQ never tries again: it is
 * closed, and the next call makes another, rather than keep one broken for good.
 */
export class LazyQueue {
  readonly #make: () => Promise<Queue>
  #queue: Promise<Queue> | undefined
  #created: Queue | undefined

  constructor (make: () => Promise<Queue>) {
    this.#make = make
  }

  async get (): Promise<Queue> {
    this.#queue ??= this.#make().then(async queue => {
      this.#created = queue
      queue.on('error', () => {})
      try {
        await queue.waitUntilReady()
        return queue
      } catch (error) {
        this.#queue = undefined
        await queue.close().catch(() => {})
        throw error
      }
    })
    return await this.#queue
  }

  /** Closes the last Queue made, if any. */
  async close (): Promise<void> {
    await this.#created?.close().catch(() => {})
  }
}
