// The work the plugin does, written by hand as an app without it would: check each Voximplant
// item's md5(salt + account_id + api_key + callback_id) in constant time, or EDIS's two fields;
// then call the handler (a counter) per item. Shared by fastify-bare and express.
import { createHash, timingSafeEqual } from 'node:crypto'
import { SECRET } from '../protocol.js'
import { countItems } from './harness.js'

interface Item {
  account_id?: unknown
  callback_id?: unknown
  hash?: unknown
}

function isSigned (item: Item): boolean {
  if (typeof item.hash !== 'string' || item.hash.length !== 32) return false
  const given = Buffer.from(item.hash, 'hex')
  const expected = createHash('md5').update(`${SECRET.salt}${item.account_id}${SECRET.apiKey}${item.callback_id}`).digest()
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** A Voximplant batch: the HTTP status to answer. */
export function receiveVoximplant (body: unknown): 200 | 400 | 401 {
  const items = (body as { callbacks?: unknown } | undefined)?.callbacks
  if (!Array.isArray(items)) return 400
  for (const item of items as Item[]) {
    if (typeof item !== 'object' || item === null || !isSigned(item)) return 401
  }
  for (let i = 0; i < items.length; i++) countItems()
  return 200
}

/** An EDIS form: the HTTP status to answer. */
export function receiveEdis (body: unknown): 200 | 400 {
  const fields = body as Record<string, unknown> | undefined
  if (typeof fields?.kvm !== 'string' || fields.kvm === '' || typeof fields.trigger_value !== 'string' || fields.trigger_value === '') return 400
  countItems()
  return 200
}

export const FAILURE = { status: 'error', message: 'Callback rejected.' } as const
