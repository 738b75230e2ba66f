import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import t from 'tap'
import { MAX_FORM_FIELDS, parseForm, REPEATED } from '../lib/edis/form.js'

// The reference: what the WHATWG parser makes of the text, repeated keys gathered as the route needs.
function reference (text: string): Record<string, string | string[]> {
  const fields: Record<string, string | string[]> = Object.create(null)
  for (const [key, value] of new URLSearchParams(text)) {
    const seen = fields[key]
    fields[key] = seen === undefined ? value : [...[seen].flat(), value]
  }
  return fields
}

// Pieces that exercise every path of the parser: separators, `+`, good and broken escapes, bytes
// that are not UTF-8, an overlong form, multi-byte text, a lone surrogate, NUL.
const PIECES = [
  'a', 'kvm', '=', '&', '&&', '+', '%', '%2', '%20', '%25', '%2B', '%26', '%3D', '%C3%A9', '%FF', '%C0%80', '%E2%82',
  '%zz', '%%', '%F0%9F%98%80', ' ', 'é', '€', '😀', '\uD800', '\0', '%00', '__proto__', 'constructor', 'toString',
  'hasOwnProperty', 'callback_pw'
]

t.test('parseForm reads any text exactly as URLSearchParams does', async t => {
  const text = fc.array(fc.constantFrom(...PIECES), { maxLength: 16 }).map(pieces => pieces.join(''))
  // fc.assert throws with the shrunk counterexample and the seed to replay it.
  t.doesNotThrow(() => fc.assert(fc.property(text, body => {
    const fields = parseForm(body)
    return isDeepStrictEqual(Object.entries(fields), Object.entries(reference(body))) && Object.getPrototypeOf(fields) === Object.prototype
  }), { seed: 20261124, numRuns: 3000 }), '3000 texts, seed 20261124')
  // The documented bodies, and the edges: a name without `=`, an empty name, empty pairs.
  for (const body of ['kvm=k&details=Traffic usage reached 100%&trigger_value=100', 'a&b=c', '=x&&a=', 'a=b=c', '']) {
    t.same(Object.entries(parseForm(body)), Object.entries(reference(body)), JSON.stringify(body))
  }
})

t.test('the names of repeated fields are kept for the route\'s 400; a field named like a method of Object is a field', async t => {
  const fields = parseForm('a=1&a=2&toString=3&b=4&a=5&toString=6&__proto__=7')
  t.same(fields[REPEATED], ['a', 'toString'])
  t.same(Object.entries(fields), [['a', ['1', '2', '5']], ['toString', ['3', '6']], ['b', '4'], ['__proto__', '7']])
  t.equal(Object.getPrototypeOf(fields), Object.prototype, 'the prototype is untouched')
  t.equal(parseForm('a=1&b=2')[REPEATED], undefined)
})

t.test(`more than ${MAX_FORM_FIELDS} fields is refused before anything reads them`, async t => {
  t.equal(Object.keys(parseForm(Array.from({ length: MAX_FORM_FIELDS }, (_, i) => `f${i}=1`).join('&'))).length, MAX_FORM_FIELDS)
  t.throws(() => parseForm(Array.from({ length: MAX_FORM_FIELDS + 1 }, (_, i) => `f${i}=1`).join('&')), { code: 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD' })
})
