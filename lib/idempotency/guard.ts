import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { HandlerFailedError, InFlightError, StoreUnavailableError } from '../errors.js'
import type { AnyProviderCallbackEvent, CallbackEvents } from '../events.js'
import type { IdempotencyStore } from './store.js'

export interface IdempotencySettings {
  store: IdempotencyStore
  /** How long a claim lives unless refreshed: how soon a crashed replica's event can run elsewhere. */
  claimTtl: number
  /** Run handlers unguarded when the store cannot be reached, instead of answering 503. */
  failOpen: boolean
}

/** What became of one event; a route's answer is the worst of its events'. */
export type Outcome = 'delivered' | 'duplicate' | 'in-flight' | 'failed' | 'unavailable'

/** Delivers one event of a provider, with that provider's deduplication window. */
export type Deliver = (event: AnyProviderCallbackEvent, request: FastifyRequest) => Promise<Outcome>

const RECORD_RETRY_INTERVAL = 100

// Claim owners: unique to a delivery attempt, across processes.
const PROCESS = randomUUID()
let attempts = 0

/**
 * Runs an event's handlers at most once to success, whatever the redeliveries and replicas:
 * claim -> handlers (the claim refreshed meanwhile) -> complete, or release on failure.
 * Without settings (idempotency: false), it only runs the handlers.
 */
export function deliverOnce (events: CallbackEvents, settings: IdempotencySettings | undefined, window: number, log: FastifyBaseLogger): Deliver {
  // The claims of running handlers, refreshed together by one timer while there are any.
  const held = new Map<string, string>()
  let refresher: NodeJS.Timeout | undefined
  const refreshHeld = (): void => {
    // Idle: the timer stops itself, rather than being stopped and started again for every event.
    if (held.size === 0) {
      clearInterval(refresher)
      refresher = undefined
    }
    for (const [key, owner] of held) {
      settings!.store.refresh!(key, owner, settings!.claimTtl).catch((error: unknown) => log.warn({ err: error, event: key }, 'could not refresh a claim'))
    }
  }
  const hold = (key: string, owner: string): void => {
    if (settings!.store.refresh === undefined) return
    held.set(key, owner)
    refresher ??= setInterval(refreshHeld, settings!.claimTtl / 3).unref()
  }
  const letGo = (key: string): void => {
    held.delete(key)
  }

  return async function deliver (event, request) {
    // Nothing listens: nothing to run, so nothing to remember.
    if (!events.hasListeners(event.name)) return 'delivered'
    if (settings === undefined) return await events.deliver(event, request) ? 'delivered' : 'failed'
    const { store, claimTtl, failOpen } = settings
    const owner = `${PROCESS}:${++attempts}`
    let claim
    try {
      claim = await store.claim(event.id, owner, claimTtl)
    } catch (error) {
      request.log.error({ err: error, event: event.id }, 'the idempotency store cannot be reached')
      if (!failOpen) return 'unavailable'
      return await events.deliver(event, request) ? 'delivered' : 'failed'
    }
    if (claim !== 'claimed') return claim === 'done' ? 'duplicate' : 'in-flight'

    hold(event.id, owner)
    let succeeded
    try {
      succeeded = await events.deliver(event, request)
    } finally {
      letGo(event.id)
    }
    if (!succeeded) {
      await store.release(event.id, owner).catch((error: unknown) => {
        // The claim then expires by itself, after which a redelivery runs the handlers.
        request.log.error({ err: error, event: event.id }, 'could not release a claim')
      })
      return 'failed'
    }
    return await record(store, event, owner, window, claimTtl, request) ? 'delivered' : 'unavailable'
  }
}

// The handlers succeeded: that must be recorded, or a redelivery would run them again. While the
// claim lives, nobody else runs the event, so a store that is briefly down is retried until then.
async function record (store: IdempotencyStore, event: AnyProviderCallbackEvent, owner: string, window: number, claimTtl: number, request: FastifyRequest): Promise<boolean> {
  const deadline = Date.now() + claimTtl
  for (;;) {
    try {
      await store.complete(event.id, owner, window)
      return true
    } catch (error) {
      if (Date.now() + RECORD_RETRY_INTERVAL >= deadline) {
        request.log.error({ err: error, event: event.id }, 'could not record a delivered event; a redelivery may run it again')
        return false
      }
      await sleep(RECORD_RETRY_INTERVAL)
    }
  }
}

const SEVERITY: Record<Outcome, number> = { delivered: 0, duplicate: 0, 'in-flight': 1, failed: 2, unavailable: 3 }

/** The worse of two outcomes, for a batch's answer. */
export function worse (a: Outcome, b: Outcome): Outcome {
  return SEVERITY[b] > SEVERITY[a] ? b : a
}

/** Throws the error a route answers with, unless every event was delivered or already done. */
export function assertDelivered (outcome: Outcome, retryAfter: number): void {
  switch (outcome) {
    case 'unavailable': throw Object.assign(new StoreUnavailableError(), { retryAfter })
    case 'failed': throw new HandlerFailedError()
    case 'in-flight': throw Object.assign(new InFlightError(), { retryAfter })
  }
}
