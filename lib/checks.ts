import { inspect } from 'node:util'
import { InvalidOptionError } from './errors.js'

/** How a value reads in code, for an error message: JSON would show NaN and Infinity as null. */
export const shown = (value: unknown): string => inspect(value, { breakLength: Infinity, depth: 2 })

// Node runs a timer of more than 2^31-1 ms after 1 ms (with a warning): a claim refreshed or a
// handler timed out at once. Such a value is refused, never silently shortened.
export const MAX_TIMER_DELAY = 2 ** 31 - 1

/** An integer option: at least `min` (1 unless told), at most `max` when given; `name` says which in the error. */
export function integerOption (value: unknown, name: string, { min = 1, max }: { min?: 0 | 1, max?: number } = {}): number {
  if (Number.isSafeInteger(value) && (value as number) >= min && (max === undefined || (value as number) <= max)) return value as number
  const kind = min === 1 ? 'a positive integer' : 'an integer of at least 0'
  throw new InvalidOptionError(`${name} must be ${kind}${max === undefined ? '' : ` of at most ${max}`}, got ${shown(value)}`)
}

/** A delay that becomes a timer: a positive integer of ms no greater than Node's longest timer. */
export function timerDelay (value: unknown, name: string): number {
  const delay = integerOption(value, name)
  if (delay > MAX_TIMER_DELAY) throw new InvalidOptionError(`${name} must be at most ${MAX_TIMER_DELAY} ms (about 24.8 days, Node's longest timer), got ${delay}`)
  return delay
}
