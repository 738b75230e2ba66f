/**
 * Thrown by a handler that knows a retry cannot help (a payload it will never accept): the event
 * goes to the dead letters at once, without its remaining attempts. BullMQ recognises it by its
 * `name`, as it does its own UnrecoverableError, so this one works without importing bullmq and
 * across duplicate copies of either package.
 */
export class UnrecoverableError extends Error {
  constructor (message = 'unrecoverable', options?: ErrorOptions) {
    super(message, options)
    this.name = 'UnrecoverableError'
  }
}

/** Whether a handler's error asks for no retry: ours, BullMQ's, or any error so named. */
export function isUnrecoverable (error: unknown): boolean {
  return error instanceof Error && error.name === 'UnrecoverableError'
}
