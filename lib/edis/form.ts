import { invalidPayload } from '../errors.js'

/** More fields than any EDIS callback has; beyond it a body is refused before anything reads it. */
export const MAX_FORM_FIELDS = 64

export type FormFields = Record<string, string | string[]>

/**
 * Parses `application/x-www-form-urlencoded` text the lenient WHATWG way, as EDIS needs: its own
 * curl example sends raw spaces and a bare `%` (`details=Traffic usage reached 100%`), which
 * `decodeURIComponent` rejects. A repeated key keeps all its values, as an array, so the route can
 * refuse it by name. The result has no prototype: `__proto__` is a field like any other.
 */
export function parseForm (text: string): FormFields {
  const fields: FormFields = Object.create(null)
  let count = 0
  for (const [key, value] of new URLSearchParams(text)) {
    if (++count > MAX_FORM_FIELDS) {
      throw invalidPayload([{ path: '', message: `must have at most ${MAX_FORM_FIELDS} fields` }])
    }
    const seen = fields[key]
    fields[key] = seen === undefined ? value : [...[seen].flat(), value]
  }
  return fields
}
