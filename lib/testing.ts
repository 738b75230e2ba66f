// fastify-provider-callbacks/testing: make the deliveries providers make, for your own tests.
// A separate entry point, so an app that does not import it loads none of it.
import { randomInt } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
// For the types of app.providerCallbacks, which index.ts declares on FastifyInstance.
import type {} from './index.js'
import type { AnyProviderCallbackEvent } from './event-types.js'
import { observeDeliveries } from './events.js'
import { voximplantHash as hash } from './voximplant/hash.js'
import { voximplantPayloads } from './voximplant/payloads.js'
import type { VoximplantCallback, VoximplantCallbackType } from './voximplant/schema.js'

/** What signs a Voximplant callback: the account's API key and the webhook's salt (optional). */
export interface VoximplantTestSecret {
  apiKey: string
  salt?: string | undefined
}

/** md5(salt + account_id + api_key + callback_id), lowercase hex: the hash Voximplant puts in `hash`. */
export function voximplantHash ({ salt, accountId, apiKey, callbackId }: { salt?: string | undefined, accountId: number, apiKey: string, callbackId: number }): string {
  return hash({ apiKey, salt }, accountId, callbackId)
}

// Fresh ids for every callback built in a process, and unlike any other process's or run's (a store
// such as Redis outlives a test run, and two runs may start in the same second): a random start,
// counted up. Ids stay exact numbers (below 2^53) however many are built.
let nextCallbackId = randomInt(2 ** 40, 2 ** 47)

const accountDefaults = {
  account_name: 'myaccount',
  account_email: 'dev@example.com',
  language_code: 'en',
  account_first_name: 'John',
  account_last_name: 'Doe',
  balance: 54.2,
  currency: 'USD'
}

type ItemFields<T extends VoximplantCallbackType> = Partial<VoximplantCallback<T>>

/**
 * A signed AccountCallback item of `type`: realistic values (the type's documented example
 * payload, a fresh `callback_id`, account 1234567), `fields` over them (shallowly: a payload given
 * replaces the example), then the hash of `secret`, unless `fields` set a `hash` of their own.
 */
export function voximplantCallback<T extends VoximplantCallbackType> (type: T, secret: VoximplantTestSecret): VoximplantCallback<T>
export function voximplantCallback<T extends VoximplantCallbackType> (type: T, fields: ItemFields<T>, secret: VoximplantTestSecret): VoximplantCallback<T>
export function voximplantCallback<T extends VoximplantCallbackType> (
  type: T, fieldsOrSecret: ItemFields<T> | VoximplantTestSecret, maybeSecret?: VoximplantTestSecret
): VoximplantCallback<T> {
  const [fields, secret] = maybeSecret === undefined
    ? [{}, fieldsOrSecret as VoximplantTestSecret]
    : [fieldsOrSecret as ItemFields<T>, maybeSecret]
  const payload = voximplantPayloads[type] as { examples: unknown[] }
  // The payload early, for whoever prints an item: Voximplant's docs put it last; JSON does not mind.
  const item = {
    callback_id: nextCallbackId++,
    type,
    account_id: 1234567,
    [type]: structuredClone(payload.examples[0]),
    ...accountDefaults,
    ...fields
  } as Record<string, unknown>
  item.hash ??= hash(secret, item.account_id as number, item.callback_id as number)
  return item as VoximplantCallback<T>
}

/** The body Voximplant posts: `{ callbacks: items }`. */
export function voximplantBatch<Items extends readonly unknown[]> (items: Items): { callbacks: Items } {
  return { callbacks: items }
}

export interface EdisTrafficFields {
  kvm?: string
  details?: string
  trigger_value?: number | 'demo'
  callback_user?: string
  callback_pw?: string
  [field: string]: string | number | undefined
}

/**
 * An EDIS traffic-threshold body (or GET query): `kvm_123456_789012` at 80% unless `fields` say
 * otherwise. `encoding: 'form'` (the default) encodes it as a browser would; `'raw'` leaves it as
 * the EDIS docs' curl sends it, raw spaces and bare `%` included.
 */
export function edisTrafficBody (fields: EdisTrafficFields = {}, { encoding = 'form' }: { encoding?: 'form' | 'raw' } = {}): string {
  const triggerValue = fields.trigger_value ?? 80
  const all = { kvm: 'kvm_123456_789012', details: `Traffic usage reached ${triggerValue}%`, ...fields, trigger_value: triggerValue }
  const pairs = Object.entries(all).filter((pair): pair is [string, string | number] => pair[1] !== undefined)
  if (encoding === 'raw') return pairs.map(([key, value]) => `${key}=${value}`).join('&')
  return new URLSearchParams(pairs.map(([key, value]): [string, string] => [key, String(value)])).toString()
}

export interface DeliverOptions {
  /** Where to post. Default `/callbacks/edis` for a form body, `/callbacks/voximplant` for a batch. */
  url?: string
  /** EDIS only: `'GET'` puts the body in the query. Default `'POST'`. */
  method?: 'POST' | 'GET'
  /** EDIS only: sent as HTTP Basic auth. */
  basicAuth?: { username: string, password: string }
  headers?: Record<string, string>
}

export interface Delivered {
  statusCode: number
  headers: Record<string, unknown>
  /** The JSON answer: `{ status: 'success', message }` or `{ status: 'error', message, code, errors? }`. */
  body: { status: 'success' | 'error', message: string, code?: string, errors?: Array<{ path: string, message: string }> }
  /** The events this delivery handed to the app's handlers, in order (one delivery at a time per app). */
  events: AnyProviderCallbackEvent[]
}

/**
 * Delivers `payload` to `app` through `inject`, as the provider would: a string is an EDIS form
 * body, an object a Voximplant batch. Returns the answer and the events it produced.
 */
export async function deliver (app: FastifyInstance, payload: string | { callbacks: readonly unknown[] }, options: DeliverOptions = {}): Promise<Delivered> {
  const edis = typeof payload === 'string'
  const method = edis ? options.method ?? 'POST' : 'POST'
  const url = options.url ?? (edis ? '/callbacks/edis' : '/callbacks/voximplant')
  const headers: Record<string, string> = { ...options.headers }
  if (options.basicAuth !== undefined) {
    headers.authorization = 'Basic ' + Buffer.from(`${options.basicAuth.username}:${options.basicAuth.password}`).toString('base64')
  }
  if (method === 'POST') headers['content-type'] ??= edis ? 'application/x-www-form-urlencoded' : 'application/json'
  // Watched, not listened to: an event the app has no handler for is left alone, as in production.
  const events: AnyProviderCallbackEvent[] = []
  const stop = observeDeliveries(app.providerCallbacks, event => { events.push(event) })
  try {
    const response = await app.inject({
      method,
      url: method === 'GET' ? `${url}?${payload as string}` : url,
      headers,
      ...(method === 'POST' ? { payload: edis ? payload : JSON.stringify(payload) } : {})
    })
    return { statusCode: response.statusCode, headers: response.headers, body: response.json(), events }
  } finally {
    stop()
  }
}
