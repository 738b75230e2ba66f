import { mock } from 'node:test'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Test } from 'tap'
import providerCallbacks, { type AnyProviderCallbackEvent, type ProviderCallbacksOptions, voximplantPayloads } from '../lib/index.js'
import { voximplantHash } from '../lib/voximplant/hash.js'

export const FORM = 'application/x-www-form-urlencoded'
export const SUCCESS_BODY = { status: 'success', message: 'Callback received successfully.' }

/** The research's three example bodies (research/edis.md §6), as they go on the wire. */
export const EDIS_BODIES = {
  canonical: 'kvm=kvm_123456_789012&details=Traffic+usage+reached+80%25&trigger_value=80',
  percentTwenty: 'kvm=kvm_234567_890123&details=Traffic%20usage%20reached%2095%25&trigger_value=95',
  unencoded: 'kvm=kvm_123456_789012&details=Traffic usage reached 100%&trigger_value=100'
}

export const CREDENTIALS = { username: 'hook', password: 'pa$$ word:with colon' }

export function basic (username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64')
}

/**
 * An app with the plugin registered and every event it emits recorded, in order. Idempotency is
 * off unless `options` say otherwise: these tests deliver the same callback again on purpose, to
 * test something else (test/idempotency*.test.ts test it on).
 */
export async function appWith (
  options: ProviderCallbacksOptions,
  serverOptions: FastifyServerOptions = {}
): Promise<{ app: FastifyInstance, events: AnyProviderCallbackEvent[] }> {
  const app = Fastify(serverOptions)
  const events: AnyProviderCallbackEvent[] = []
  await app.register(providerCallbacks, { idempotency: false, ...options })
  app.providerCallbacks.onAny(event => { events.push(event) })
  await app.ready()
  return { app, events }
}

/** An app with the plugin on Voximplant's route (VOX's secret) and `options`, ready, closed when the test ends. */
export async function voximplantApp (t: Test, options: Partial<ProviderCallbacksOptions>, serverOptions: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(serverOptions)
  await app.register(providerCallbacks, { voximplant: { secret: VOX }, ...options })
  t.teardown(async () => { await app.close() })
  await app.ready()
  return app
}

/** The research's inputs (research/voximplant.md §6): Voximplant's sample API key, an account, a salt. */
export const VOX = { accountId: 1234567, apiKey: 'eec36d6c-a0eb-46b5-a006-1c2b65343bac', salt: 'mySecretSalt' }

const ACCOUNT_FIELDS = {
  account_name: 'myaccount',
  account_email: 'dev@example.com',
  language_code: 'en',
  account_first_name: 'John',
  account_last_name: 'Doe',
  balance: 54.2,
  currency: 'USD'
}

/**
 * A signed AccountCallback item: the type's documented example payload (or `payload`), the common
 * fields, and the hash of `secret`; `fields` override anything, the hash included.
 */
export function signedItem (
  type: string,
  callbackId: number,
  fields: Record<string, unknown> = {},
  secret: { apiKey: string, salt?: string } = VOX,
  accountId = VOX.accountId
): Record<string, unknown> {
  const example = (voximplantPayloads as Record<string, { examples?: unknown[] }>)[type]?.examples?.[0] ?? {}
  return {
    callback_id: callbackId,
    type,
    account_id: accountId,
    hash: voximplantHash(secret, accountId, callbackId),
    ...ACCOUNT_FIELDS,
    [type]: structuredClone(example),
    ...fields
  }
}

export function postBatch (app: FastifyInstance, callbacks: unknown[], headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/callbacks/voximplant', headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify({ callbacks }) })
}

// Child processes compile TypeScript with this process's loader (tap's), not tsx: tap merges the
// coverage of every process by file, and a file compiled by two loaders would have one's offsets
// read through the other's source map. Outside tap, tsx.
const tapLoader = process.execArgv.filter(arg => arg.includes('@tapjs/typescript'))
export const TYPESCRIPT_NODE_ARGS = tapLoader.length > 0 ? tapLoader : ['--import', 'tsx']

/**
 * A wait a handler holds until the test ends it, so that "while it runs" is a state the test
 * controls rather than a time it hopes is long enough: the handler awaits `pass()`; `reached`
 * resolves once it does; `open()` or `fail(error)` ends its wait.
 */
export function gate (): { pass: () => Promise<void>, reached: Promise<void>, open: () => void, fail: (error: Error) => void } {
  let arrive = (): void => {}
  const reached = new Promise<void>(resolve => { arrive = resolve })
  let open = (): void => {}
  let fail = (_error: Error): void => {}
  const opened = new Promise<void>((resolve, reject) => { open = resolve; fail = reject })
  return { pass: () => { arrive(); return opened }, reached, open, fail }
}

/**
 * Resolves after everything already queued as a promise continuation has run. With the memory
 * store and handlers that are done, a delivery's bookkeeping (complete, release) is such
 * continuations: after this, it is recorded, however slow the machine.
 */
export const nextTurn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

/**
 * Node's fake clock for `apis`, from the real time, until `t` ends: a timeout or an expiry then
 * happens when the test moves the clock, exactly, never because the machine was slow. Enable it
 * after the app is ready (Fastify's start-up has timers of its own).
 */
export function fakeClock (t: Test, apis: Array<'setTimeout' | 'setInterval' | 'Date'>): typeof mock.timers {
  mock.timers.enable({ apis, now: Date.now() })
  t.teardown(() => { mock.timers.reset() })
  return mock.timers
}
