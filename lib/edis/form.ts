import { invalidPayload } from '../errors.js'

/** More fields than any EDIS callback has; beyond it a body is refused before anything reads it. */
export const MAX_FORM_FIELDS = 64

/** Set on a parsed form when a field came more than once: their names, for the route's 400. */
export const REPEATED = Symbol('fastify-provider-callbacks: repeated fields')

/** Set on what the body parser returns instead of throwing: the route's 400 for the body. */
export const REFUSED = Symbol('fastify-provider-callbacks: refused form')

export type FormFields = Record<string, string | string[]> & { [REPEATED]?: string[], [REFUSED]?: Error }

/**
 * Parses `application/x-www-form-urlencoded` text the lenient WHATWG way, as EDIS needs: its own
 * curl example sends raw spaces and a bare `%` (`details=Traffic usage reached 100%`), which
 * `decodeURIComponent` rejects. The fields are exactly `new URLSearchParams(text)`'s, at a fraction
 * of its cost for the usual, well-encoded body. A repeated key keeps all its values, as an array,
 * and is named under REPEATED, so the route can refuse it by name. The result is a plain object,
 * the payload handlers get as it is; a `__proto__` field is a field of its own, never the prototype.
 */
export function parseForm (body: string): FormFields {
  // As WHATWG encodes the text to UTF-8 first: a lone surrogate becomes U+FFFD.
  const text = body.toWellFormed()
  const fields: FormFields = {}
  let count = 0
  let start = 0
  while (start <= text.length) {
    let end = text.indexOf('&', start)
    if (end === -1) end = text.length
    if (end > start) {
      if (++count > MAX_FORM_FIELDS) {
        throw invalidPayload([{ path: '', message: `must have at most ${MAX_FORM_FIELDS} fields` }])
      }
      let equals = text.indexOf('=', start)
      if (equals === -1 || equals > end) equals = end
      const key = decode(text.slice(start, equals))
      const value = equals === end ? '' : decode(text.slice(equals + 1, end))
      if (Object.hasOwn(fields, key)) {
        repeat(fields, key, value)
      } else if (key === '__proto__') {
        Object.defineProperty(fields, key, { value, enumerable: true, writable: true, configurable: true })
      } else {
        fields[key] = value
      }
    }
    start = end + 1
  }
  return fields
}

/** parseForm for a body parser, which must not throw: a refusal comes back under REFUSED. */
export function parseFormOrRefusal (body: string): FormFields {
  try {
    return parseForm(body)
  } catch (error) {
    return { [REFUSED]: error as Error }
  }
}

function repeat (fields: FormFields, key: string, value: string): void {
  const seen = fields[key]!
  if (typeof seen === 'string') {
    fields[key] = [seen, value]
    const repeated = fields[REPEATED]
    if (repeated === undefined) Object.defineProperty(fields, REPEATED, { value: [key] })
    else repeated.push(key)
  } else {
    seen.push(value)
  }
}

/**
 * One name or value: `+` is a space, and `%XX` a byte of UTF-8. Text that decodeURIComponent
 * refuses (a bare `%`, bytes that are not UTF-8) is decoded by URLSearchParams, which keeps the
 * `%` and replaces bad bytes with U+FFFD, as WHATWG says.
 */
export function decode (text: string): string {
  const spaced = text.includes('+') ? text.replaceAll('+', ' ') : text
  if (!spaced.includes('%')) return spaced
  try {
    return decodeURIComponent(spaced)
  } catch {
    return new URLSearchParams(`=${text}`).get('')!
  }
}
