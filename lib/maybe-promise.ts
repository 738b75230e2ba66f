/** A value now, or a promise of it later: what a synchronous store or handler gives at once. */
export type MaybePromise<T> = T | Promise<T>

/** Whether an answer is still to come. */
export function isPromiseLike (value: unknown): value is PromiseLike<unknown> {
  // The type test first: most answers are strings, booleans or undefined, looked at no further.
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as PromiseLike<unknown>).then === 'function'
}

/** `next` of a value, now if it is here, once it is if it is a promise. */
export function then<T, U> (value: MaybePromise<T>, next: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return isPromiseLike(value) ? Promise.resolve(value).then(next) : next(value)
}

/** Calls something whose failure is only reported (a store's release), whether it throws or rejects. */
export function quietly (call: () => MaybePromise<void>, onError: (error: unknown) => void): Promise<void> | undefined {
  try {
    const result = call()
    if (isPromiseLike(result)) return Promise.resolve(result).catch(onError)
  } catch (error) {
    onError(error)
  }
}
