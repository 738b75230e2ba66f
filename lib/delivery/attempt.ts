import { randomBytes } from 'node:crypto'
import type { AnyProviderCallbackEvent } from '../event-types.js'
import type { HeldClaim } from '../idempotency/claims.js'
import type { DeliveryRequest } from './outcome.js'

/** One guarded delivery of one event: what each of its steps (claim, run, record) works on. */
export interface Attempt {
  readonly event: AnyProviderCallbackEvent
  /** The claim's owner: unique to this attempt, across processes. */
  readonly owner: string
  /** When the claim was sent: its expiry is counted from then, so never later than the store's own. */
  readonly sentAt: number
  /** The provider's deduplication window: how long the done mark lasts. */
  readonly window: number
  readonly request: DeliveryRequest
  /** The claim while it is held (refreshed): pending handlers', or a batch item's waiting for its turn. */
  held: HeldClaim | undefined
}

// 96 random bits name the process: short, so that a claim's value in Redis stays within one
// allocation (44 bytes).
const PROCESS = randomBytes(12).toString('base64url')
let attempts = 0

export function newAttempt (event: AnyProviderCallbackEvent, window: number, request: DeliveryRequest, sentAt: number): Attempt {
  return { event, owner: `${PROCESS}:${++attempts}`, sentAt, window, request, held: undefined }
}
