// The shared half of the fuzz suite (issue 8): the seed, the runner that turns a fast-check property
// into a tap assertion, an app that counts every event it emits, the documented answers, the
// prototype-pollution check, a raw-socket client, and the arbitraries both routes draw from.
// The properties themselves are in test/fuzz-voximplant.test.ts and test/fuzz-edis.test.ts.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { Kind, type TSchema } from '@sinclair/typebox'
import fc from 'fast-check'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AnyProviderCallbackEvent, ProviderCallbackHandler, ProviderCallbacksOptions } from '../lib/index.js'
import { voximplantEventNames } from '../lib/voximplant/schema.js'
import { appWith } from './helpers.js'

// ---------------------------------------------------------------------------------------------
// Seed and runs

const DEFAULT_SEED = 20251124

function integerFromEnv (name: string, fallback: number): number {
  const text = process.env[name]
  if (text === undefined || text.trim() === '') return fallback
  const value = Number(text)
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(text)}`)
  return value
}

/** The seed of every property: fixed, so every run checks the same cases; `FUZZ_SEED=n` for others. */
export const SEED = integerFromEnv('FUZZ_SEED', DEFAULT_SEED)
/** `FUZZ_SCALE=10` runs ten times the cases, for a longer hunt by hand. */
export const SCALE = Math.max(1, integerFromEnv('FUZZ_SCALE', 1))

interface TapLike {
  comment: (...message: unknown[]) => void
  pass: (message: string) => void
  fail: (message: string) => void
}

/** Says which seed this file runs with, so that a failure can be replayed. */
export function announceSeed (t: TapLike): void {
  t.comment(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}; FUZZ_SCALE=${SCALE})`)
}

/**
 * Runs `property` for `numRuns` cases from the suite's seed, and passes or fails once: on a
 * failure, with fast-check's report (the shrunk counterexample, the seed and the path to replay).
 * A case that takes over 10 s (a request that never gets an answer) fails too.
 */
export async function holds<Ts> (t: TapLike, name: string, property: fc.IAsyncPropertyWithHooks<Ts>, numRuns: number): Promise<void> {
  const runs = numRuns * SCALE
  const details = await fc.check(property, { seed: SEED, numRuns: runs, timeout: 10_000 })
  if (details.failed) {
    const error = details.errorInstance
    t.fail(`${name}\n${error instanceof Error ? error.message : String(error)}\n${fc.defaultReportMessage(details)}`)
  } else {
    assert.equal(details.numRuns, runs, `${name}: every case ran`)
    t.pass(`${name}: ${details.numRuns} cases`)
  }
}

// ---------------------------------------------------------------------------------------------
// An app that records every event, whoever it is for

/** Every event name the plugin knows: EDIS's one and each Voximplant type's. */
export const KNOWN_EVENT_NAMES: readonly string[] = ['traffic-threshold', ...voximplantEventNames]

export interface FuzzApp {
  app: FastifyInstance
  /** What `onAny` listeners got, in order. */
  any: AnyProviderCallbackEvent[]
  /** What named handlers got: one handler on every known name. */
  named: Array<{ handler: string, event: AnyProviderCallbackEvent }>
  /** Forgets the events of the previous case. */
  reset: () => void
}

export async function fuzzApp (options: ProviderCallbacksOptions, serverOptions: FastifyServerOptions = {}): Promise<FuzzApp> {
  const { app, events } = await appWith(options, serverOptions)
  const named: FuzzApp['named'] = []
  const on = app.providerCallbacks.on.bind(app.providerCallbacks) as unknown as (name: string, handler: ProviderCallbackHandler) => void
  for (const handler of KNOWN_EVENT_NAMES) on(handler, event => { named.push({ handler, event }) })
  return {
    app,
    any: events,
    named,
    reset: () => {
      events.length = 0
      named.length = 0
    }
  }
}

export function assertNoEvent (fuzz: FuzzApp, context: string): void {
  assert.equal(fuzz.any.length, 0, `${context}: no onAny event, got ${fuzz.any.map(e => e.name).join(', ')}`)
  assert.equal(fuzz.named.length, 0, `${context}: no named handler ran, got ${fuzz.named.map(e => e.handler).join(', ')}`)
}

// ---------------------------------------------------------------------------------------------
// The documented answers (README "Answers and errors")

/** What a response is, whether from app.inject or a real socket. */
export interface Answer {
  statusCode: number
  headers: Record<string, unknown>
  body: string
}

export const SUCCESS_ANSWER = { status: 'success', message: 'Callback received successfully.' }

/** The codes, without their `FST_PROVIDER_CALLBACKS_` prefix, with the status each answers with. */
export const ERROR_STATUS = {
  FORBIDDEN_SOURCE: 403,
  UNAUTHORIZED: 401,
  INVALID_PAYLOAD: 400,
  REPEATED_FIELD: 400,
  MALFORMED_BODY: 400,
  PAYLOAD_TOO_LARGE: 413,
  BATCH_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  METHOD_NOT_ALLOWED: 405
} as const

export type ErrorCode = keyof typeof ERROR_STATUS

// The 400 message is the seed's exact text (DESIGN.md); the others are what users see documented.
const ERROR_MESSAGE: Record<ErrorCode, RegExp> = {
  FORBIDDEN_SOURCE: /^The request does not come from an allowed address\.$/,
  UNAUTHORIZED: /^Missing or invalid callback credentials\.$/,
  INVALID_PAYLOAD: /^Invalid request parameters provided\.$/,
  REPEATED_FIELD: /^Invalid request parameters provided\.$/,
  MALFORMED_BODY: /^Invalid request parameters provided\.$/,
  PAYLOAD_TOO_LARGE: /^The request body is too large\.$/,
  BATCH_TOO_LARGE: /^The batch has more callbacks than the \d+ this route accepts\.$/,
  UNSUPPORTED_MEDIA_TYPE: /^Unsupported content type; this route accepts (application\/json|application\/x-www-form-urlencoded)\.$/,
  METHOD_NOT_ALLOWED: /^This method is not allowed here; the Allow header lists those that are\.$/
}

/** A 400 that lists what was wrong: `errors`, each a JSON pointer and a message. */
const LISTS_PROBLEMS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['INVALID_PAYLOAD', 'REPEATED_FIELD'])

export interface ExpectedError {
  code: ErrorCode
  /** A field the answer's `errors` must name (the pointer itself, or a field below it). */
  path?: string | undefined
  /** METHOD_NOT_ALLOWED: the methods the `Allow` header lists. */
  allow?: string
  /** The answer to a HEAD, which has headers only. */
  bodyless?: boolean
}

export function show (answer: Answer): string {
  return `${answer.statusCode} ${answer.body.length > 600 ? answer.body.slice(0, 600) + '…' : answer.body}`
}

function jsonOf (answer: Answer, context: string): Record<string, unknown> {
  const type = String(answer.headers['content-type'])
  assert.match(type, /^application\/json; charset=utf-8$/, `${context}: a JSON answer, got ${type}`)
  let body: unknown
  try {
    body = JSON.parse(answer.body)
  } catch {
    assert.fail(`${context}: the answer is not JSON: ${show(answer)}`)
  }
  assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body), `${context}: a JSON object, got ${show(answer)}`)
  return body as Record<string, unknown>
}

/** The plugin's error answer: the status of `code`, `{ status: 'error', message, code }`, `errors` on a 400 that lists them. */
export function assertError (answer: Answer, expected: ExpectedError, context: string): void {
  const { code, path } = expected
  assert.ok(answer.statusCode < 500, `${context}: never a 5xx, got ${show(answer)}`)
  assert.equal(answer.statusCode, ERROR_STATUS[code], `${context}: expected ${ERROR_STATUS[code]} ${code}, got ${show(answer)}`)
  if (expected.allow !== undefined) assert.equal(answer.headers.allow, expected.allow, `${context}: the Allow header`)
  if (expected.bodyless === true) {
    assert.equal(answer.body, '', context)
    return
  }
  const body = jsonOf(answer, context)
  const keys = Object.keys(body).sort()
  const shape = LISTS_PROBLEMS.has(code) ? ['code', 'errors', 'message', 'status'] : ['code', 'message', 'status']
  assert.deepEqual(keys, shape, `${context}: the documented shape, got ${show(answer)}`)
  assert.equal(body.status, 'error', context)
  assert.equal(body.code, `FST_PROVIDER_CALLBACKS_${code}`, `${context}: got ${show(answer)}`)
  assert.match(String(body.message), ERROR_MESSAGE[code], `${context}: the message of ${code}`)
  if (LISTS_PROBLEMS.has(code)) {
    const problems = body.errors
    assert.ok(Array.isArray(problems) && problems.length >= 1 && problems.length <= 10, `${context}: 1 to 10 problems, got ${show(answer)}`)
    for (const problem of problems as unknown[]) {
      assert.ok(typeof problem === 'object' && problem !== null, context)
      assert.deepEqual(Object.keys(problem).sort(), ['message', 'path'], `${context}: a problem is { path, message }`)
      const { path: at, message } = problem as { path: unknown, message: unknown }
      assert.ok(typeof at === 'string' && (at === '' || at.startsWith('/')), `${context}: a problem's path is a JSON pointer, got ${JSON.stringify(at)}`)
      assert.ok(typeof message === 'string' && message.length > 0, context)
    }
    if (path !== undefined) {
      const paths = (problems as Array<{ path: string }>).map(p => p.path)
      assert.ok(paths.some(p => p === path || p.startsWith(path + '/')), `${context}: the errors name ${path}, got ${JSON.stringify(paths)}`)
    }
  }
}

export function assertSuccess (answer: Answer, context: string): void {
  assert.equal(answer.statusCode, 200, `${context}: expected 200, got ${show(answer)}`)
  assert.deepEqual(jsonOf(answer, context), SUCCESS_ANSWER, context)
}

/**
 * What a method gets on a route's path: the plugin's 405 (with the Allow header) for the methods
 * Fastify serves, and Fastify's own answer to the others (WebDAV's, say), which no route can take.
 */
export function otherMethodOutcome (method: string, allow: string): ExpectedError | { noRoute: string } {
  return SERVED_METHODS.has(method) ? { code: 'METHOD_NOT_ALLOWED', allow, bodyless: method === 'HEAD' } : { noRoute: method }
}
const SERVED_METHODS: ReadonlySet<string> = new Set(Fastify().supportedMethods)

/**
 * Fastify's own answer to a method no route of the plugin has. It comes from the host's scope (its
 * not-found handler, its content-type parsers, its error handler), not from the plugin, so it has
 * Fastify's error shape, not the plugin's: a 404, or a 4xx about the body, since Fastify reads the
 * body of a request to an unknown route with the host's parsers before it answers 404 (a 415 for a
 * Content-Type that is not a media type, a 400 for a body the host's JSON parser refuses). It is
 * accepted for methods without a route only.
 */
export function assertNoRoute (answer: Answer, method: string, context: string): void {
  assert.ok([400, 404, 413, 415].includes(answer.statusCode), `${context}: ${method} has no route, got ${show(answer)}`)
  if (method === 'HEAD') {
    assert.equal(answer.body, '', context)
    return
  }
  const body = jsonOf(answer, context)
  const keys = Object.keys(body).sort()
  assert.deepEqual(keys.filter(key => key !== 'code'), ['error', 'message', 'statusCode'], `${context}: Fastify's error shape, got ${show(answer)}`)
  assert.equal(body.statusCode, answer.statusCode, context)
  assert.ok(!String(body.code ?? '').startsWith('FST_PROVIDER_CALLBACKS_'), `${context}: not an answer of the plugin's routes`)
  if (answer.statusCode === 404) assert.equal(body.error, 'Not Found', context)
}

/** A refusal: the plugin's documented error (or, for a method without a route, Fastify's answer), and nothing emitted. */
export function assertRefused (fuzz: FuzzApp, answer: Answer, expected: ExpectedError | { noRoute: string }, context: string): void {
  if ('noRoute' in expected) assertNoRoute(answer, expected.noRoute, context)
  else assertError(answer, expected, context)
  assertNoEvent(fuzz, context)
}

/** An answer never quotes a value the request sent (README: "Answers never echo what the request sent"). */
export function assertNotEchoed (answer: Answer, marker: string, context: string): void {
  assert.ok(!answer.body.includes(marker), `${context}: the answer echoes a value of the request: ${show(answer)}`)
}

// ---------------------------------------------------------------------------------------------
// Prototype pollution

const PROTOTYPES: ReadonlyArray<[string, object]> = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['String.prototype', String.prototype],
  ['Number.prototype', Number.prototype],
  ['Boolean.prototype', Boolean.prototype],
  ['Symbol.prototype', Symbol.prototype],
  ['Date.prototype', Date.prototype],
  ['RegExp.prototype', RegExp.prototype],
  ['Error.prototype', Error.prototype],
  ['Promise.prototype', Promise.prototype],
  ['Map.prototype', Map.prototype],
  ['Set.prototype', Set.prototype],
  ['Buffer.prototype', Buffer.prototype],
  ['Uint8Array.prototype', Uint8Array.prototype],
  ['TypedArray.prototype', Object.getPrototypeOf(Uint8Array.prototype) as object]
]

export type PrototypeSnapshot = Array<{ name: string, target: object, parent: object | null, extensible: boolean, own: Map<PropertyKey, PropertyDescriptor> }>

/** Every own property of the built-in prototypes, and what they inherit from. */
export function snapshotPrototypes (): PrototypeSnapshot {
  return PROTOTYPES.map(([name, target]) => ({
    name,
    target,
    parent: Object.getPrototypeOf(target) as object | null,
    extensible: Object.isExtensible(target),
    own: new Map(Reflect.ownKeys(target).map(key => [key, Object.getOwnPropertyDescriptor(target, key)!]))
  }))
}

const DESCRIPTOR_FIELDS = ['value', 'get', 'set', 'writable', 'enumerable', 'configurable'] as const

/** Nothing was added to, removed from or changed on a built-in prototype since `before`. */
export function assertPrototypesIntact (before: PrototypeSnapshot, context: string): void {
  for (const { name, target, parent, extensible, own } of before) {
    assert.equal(Object.getPrototypeOf(target), parent, `${context}: ${name}'s prototype changed`)
    assert.equal(Object.isExtensible(target), extensible, `${context}: ${name} extensibility changed`)
    const keys = Reflect.ownKeys(target)
    const added = keys.filter(key => !own.has(key))
    assert.equal(added.length, 0, `${context}: ${name} polluted with ${added.map(String).join(', ')}`)
    assert.equal(keys.length, own.size, `${context}: ${name} lost properties`)
    for (const key of keys) {
      const now = Object.getOwnPropertyDescriptor(target, key)!
      const then = own.get(key)!
      // The message is built only for a failure: for every field of every key, in every case, it was most of this check's cost.
      for (const field of DESCRIPTOR_FIELDS) {
        if (!Object.is(now[field], then[field])) assert.fail(`${context}: ${name}.${String(key)} changed (${field})`)
      }
    }
  }
  const probe: Record<string, unknown> = {}
  for (const key of ['polluted', 'isAdmin', 'x', 'a', 'type', 'hash', 'callbacks', 'kvm']) {
    assert.equal(probe[key], undefined, `${context}: a fresh object inherits ${key}`)
  }
}

// ---------------------------------------------------------------------------------------------
// JSON text that JSON.stringify cannot write: literal numbers, repeated or escaped keys

/** A JSON value written as is: `1e400`, `12345678901234567890`, a string with a raw control character. */
export class RawJson {
  constructor (readonly text: string) {}
}

/** An object written member by member: each key is raw JSON text, so it may repeat or be escaped. */
export class Members {
  constructor (readonly members: ReadonlyArray<readonly [string, unknown]>) {}
}

/** JSON text of a value that may hold RawJson and Members; `undefined` members are left out, as JSON.stringify does. */
export function toJson (value: unknown): string {
  if (value instanceof RawJson) return value.text
  if (value instanceof Members) return '{' + value.members.map(([key, member]) => `${key}:${toJson(member)}`).join(',') + '}'
  if (Array.isArray(value)) return '[' + value.map(item => item === undefined ? 'null' : toJson(item)).join(',') + ']'
  if (typeof value === 'object' && value !== null) {
    return '{' + Object.entries(value).filter(([, member]) => member !== undefined).map(([key, member]) => `${JSON.stringify(key)}:${toJson(member)}`).join(',') + '}'
  }
  return JSON.stringify(value) ?? 'null'
}

/** `"key"` with each character of `key` written plainly or as a \u escape (lower or upper hex), chosen by `how`. */
export function escapedKey (key: string, how: readonly number[]): string {
  let text = ''
  for (let i = 0; i < key.length; i++) {
    const choice = how[i % Math.max(1, how.length)] ?? 0
    const hex = key.charCodeAt(i).toString(16).padStart(4, '0')
    text += choice === 0 ? JSON.stringify(key[i]).slice(1, -1) : choice === 1 ? `\\u${hex}` : `\\u${hex.toUpperCase()}`
  }
  return `"${text}"`
}

/** How to write a key: per character, 0 plain, 1 \u escape in lower-case hex, 2 in upper-case. */
export const keyEscapes = fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 2) }), { minLength: 1, maxLength: 12 })

/** JSON whitespace a sender may put between a key and its colon. */
export const jsonSpace = fc.constantFrom('', '', ' ', '\t', '\n', '\r\n  ')

/** Whether JSON.parse of the text would give an object with an own `__proto__` key, or a `constructor` holding a `prototype`. */
export function hasPrototypeKeys (value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (Object.hasOwn(value, '__proto__')) return true
  const { constructor } = value as { constructor?: unknown }
  if (Object.hasOwn(value, 'constructor') && typeof constructor === 'object' && constructor !== null && Object.hasOwn(constructor, 'prototype')) return true
  return Object.values(value).some(hasPrototypeKeys)
}

// ---------------------------------------------------------------------------------------------
// Values

/** JSON without `__proto__` keys or `constructor.prototype`: what a valid payload may carry anywhere. */
export const safeJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 2 }).filter(value => !hasPrototypeKeys(value))

/** Strings a sender may put anywhere: any code point, NUL and control characters, lone surrogates, form and JSON syntax, long runs. */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom('%', '&', '=', '+', ';', '#', '?', '/', '\\', '"', '\'', ' ', '\t', '\r', '\n', '\u0000', '\u001f', '\u007f', '~', 'a', '2', 'F'), maxLength: 16 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '', '\u0000', 'a\u0000b', '\ud800', 'a\udc00b', '\ud83d', '\ufeff', '\ufffd', '\u2028\u2029', '𝄞', 'é', 'e\u0301',
      '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '[object Object]', 'null', 'undefined',
      '0', '-0', '1e308', 'NaN', 'Infinity', '%', '100%', '%zz', '%E9', '%FF', '%C0%80', '%00', '+', '&&', '==', '<script>alert(1)</script>',
      '$' + '{7*7}', '../../etc/passwd', 'DROP TABLE', '\r\n\r\nHTTP/1.1 200 OK'
    )
  },
  { weight: 1, arbitrary: fc.tuple(fc.string({ minLength: 1, maxLength: 3 }), fc.integer({ min: 20, max: 400 })).map(([unit, times]) => unit.repeat(times)) }
)

/** Byte sequences that are not UTF-8: stray continuation bytes, overlong forms, surrogates, past U+10FFFF, cut-off sequences. */
export const invalidUtf8: fc.Arbitrary<Buffer> = fc.array(fc.constantFrom(
  [0xff], [0xfe], [0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc3]
), { minLength: 1, maxLength: 4 }).map(parts => Buffer.from(parts.flat()))

/** What a string becomes once sent as UTF-8: lone surrogates turn into U+FFFD. */
export function onTheWire (text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8')
}

/**
 * Decimal text that a number field accepts for its number (README: "numbers sent as decimal strings
 * become numbers"): an integer only while it is exact, up to Number.MAX_SAFE_INTEGER.
 */
export const DECIMAL_INTEGER = {
  // -0 is no integer: it would print back as 0.
  test: (text: string): boolean => /^(?:0|-?[1-9]\d{0,15})$/.test(text) && Number.isSafeInteger(Number(text))
}
export const DECIMAL_NUMBER = /^-?(?:0|[1-9]\d{0,14})(?:\.\d{1,15})?$/

const integerValue = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -1_000_000, max: 1_000_000 }) },
  { weight: 2, arbitrary: fc.maxSafeInteger() },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e21, 1e300, -1e300) }
)
const numberValue = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -1_000_000_00, max: 1_000_000_00 }).map(cents => cents / 100) },
  { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 1e-7, 0.1 + 0.2) }
)

export type Schema = TSchema & { properties?: Record<string, TSchema>, required?: string[], items?: TSchema, anyOf?: TSchema[], const?: unknown }

/**
 * A value that `schema` accepts, as the provider would send it: every required field, any optional
 * ones, and values from across each type's range. Strings under a union that takes an integer are
 * never decimal text (the route would read those as the number).
 */
export function valueOf (schema: Schema): fc.Arbitrary<unknown> {
  switch (schema[Kind]) {
    case 'Object': {
      const model = Object.fromEntries(Object.entries(schema.properties ?? {}).map(([key, property]) => [key, valueOf(property)]))
      return fc.record(model, { requiredKeys: schema.required ?? [] }) as fc.Arbitrary<unknown>
    }
    case 'Array':
      return fc.array(valueOf(schema.items!), { maxLength: 3 })
    case 'String':
      return anyString
    case 'Integer':
      return integerValue
    case 'Number':
      return numberValue
    case 'Boolean':
      return fc.boolean()
    case 'Literal':
      return fc.constant(schema.const)
    case 'Union': {
      const takesInteger = schema.anyOf!.some(member => member[Kind] === 'Integer' || member[Kind] === 'Number')
      return fc.oneof(...schema.anyOf!.map(member => member[Kind] === 'String' && takesInteger
        ? anyString.filter(text => !DECIMAL_NUMBER.test(text))
        : valueOf(member)))
    }
  }
  throw new Error(`valueOf: no arbitrary for a ${String(schema[Kind])} schema`)
}

export type Path = Array<string | number>

/** Where in `value` each part of `schema` sits: the path to every present property and array item, and its schema. */
export function locate (schema: Schema, value: unknown, path: Path = []): Array<{ path: Path, schema: Schema }> {
  const found = [{ path, schema }]
  if (schema[Kind] === 'Object' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [key, property] of Object.entries(schema.properties ?? {})) {
      if (Object.hasOwn(value, key)) found.push(...locate(property, (value as Record<string, unknown>)[key], [...path, key]))
    }
  }
  if (schema[Kind] === 'Array' && Array.isArray(value)) {
    value.forEach((item, i) => found.push(...locate(schema.items!, item, [...path, i])))
  }
  return found
}

/** A JSON pointer, as the answers' `errors` name fields. */
export function pointer (path: Path): string {
  return path.map(part => '/' + String(part).replaceAll('~', '~0').replaceAll('/', '~1')).join('')
}

export function getAt (root: unknown, path: Path): unknown {
  return path.reduce<unknown>((node, part) => (node as Record<string | number, unknown>)[part], root)
}

export function setAt (root: unknown, path: Path, value: unknown): void {
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, unknown>
  Object.defineProperty(parent, path[path.length - 1]!, { value, enumerable: true, writable: true, configurable: true })
}

/**
 * A value of another JSON type than `schema` takes, that no leniency turns back into one it takes:
 * never decimal text where a number goes, never a whole number where only a string goes.
 */
export function wrongTypeFor (schema: Schema): fc.Arbitrary<unknown> {
  // A literal string (an item's `type`) is a string here: another string would make it another type, not a wrong one.
  const kindOf = (s: Schema): string => s[Kind] === 'Literal' ? typeof s.const : String(s[Kind])
  const kinds = (schema[Kind] === 'Union' ? schema.anyOf!.map(kindOf) : [kindOf(schema)]).map(kind => kind === 'string' ? 'String' : kind)
  const numeric = kinds.includes('Integer') || kinds.includes('Number')
  const options: Array<fc.Arbitrary<unknown>> = [fc.constant(null)]
  if (!kinds.includes('Boolean')) options.push(fc.boolean())
  if (!kinds.includes('String')) options.push(numeric ? anyString.filter(text => !DECIMAL_NUMBER.test(text)) : anyString)
  if (!numeric) options.push(fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })))
  if (kinds.includes('Integer') && !kinds.includes('Number')) options.push(fc.double({ noNaN: true, noDefaultInfinity: true }).filter(n => !Number.isInteger(n)))
  if (!kinds.includes('Array')) options.push(fc.array(safeJson, { maxLength: 2 }))
  if (!kinds.includes('Object')) options.push(fc.dictionary(fc.string({ maxLength: 6 }), safeJson, { maxKeys: 2 }).filter(value => !hasPrototypeKeys(value)))
  return fc.oneof(...options)
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** Methods Fastify routes, for the methods a route does not have. */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'SEARCH', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK'] as const

function caseVariant (text: string, mask: number): string {
  return [...text].map((c, i) => ((mask >>> (i % 31)) & 1) === 1 ? c.toUpperCase() : c.toLowerCase()).join('')
}

const CHARSETS = ['utf-8', 'UTF-8', 'utf8', '"utf-8"', 'latin1', 'iso-8859-1', 'us-ascii', 'utf-16', 'utf-16le', 'windows-1251', 'koi8-r', 'shift_jis', 'x-unknown', '""', '"a;b"']
const headerText = fc.string({ unit: fc.constantFrom(...' abcxyz019=;,"\\/-+.\t'.split('')), maxLength: 12 })

/**
 * A Content-Type header that names one of `mediaTypes`: any letter case, spaces around it, and any
 * parameters after the `;`, well-formed or not (a charset of every kind among them).
 */
export function acceptedContentType (mediaTypes: readonly string[]): fc.Arbitrary<string> {
  const parameter = fc.oneof(
    fc.constantFrom(...CHARSETS).map(charset => `charset=${charset}`),
    fc.tuple(fc.constantFrom('Charset', 'CHARSET', 'boundary', 'q', 'version'), fc.constantFrom('=', ' = '), fc.constantFrom('1', 'x', '"quoted; value"')).map(parts => parts.join('')),
    headerText
  )
  return fc.tuple(
    fc.constantFrom(...mediaTypes),
    fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    fc.constantFrom('', ' ', '\t'),
    fc.constantFrom('', ' ', '\t '),
    fc.array(fc.tuple(fc.constantFrom('', ' ', '  '), parameter), { maxLength: 3 })
  ).map(([media, mask, before, after, parameters]) => {
    const head = before + caseVariant(media, mask)
    if (parameters.length === 0) return head + after.trimStart()
    return head + after + parameters.map(([space, p]) => `;${space}${p}`).join('')
  })
}

const OTHER_MEDIA_TYPES = [
  'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=----x', 'text/html', 'text/xml', 'application/xml',
  'application/octet-stream', 'application/vnd.api+json', 'application/problem+json', 'application/json-patch+json', 'application/jsonx', 'text/json',
  'application/javascript', 'text/csv', 'application/x-www-form-urlencoded+json', 'application/x-www-form', 'image/png', '*/*', 'application/*'
]

/**
 * A Content-Type header that does not name any of `accepted`: other media types, near misses
 * (`application/json/x`, `text/json`, a comma list), headers that are not media types, empty.
 */
export function refusedContentType (accepted: readonly string[]): fc.Arbitrary<string> {
  const token = fc.string({ unit: fc.constantFrom(...'abcjsonplaintextformx-+.*'.split('')), minLength: 1, maxLength: 10 })
  return fc.oneof(
    fc.constantFrom(...OTHER_MEDIA_TYPES),
    fc.tuple(token, token).map(([type, subtype]) => `${type}/${subtype}`),
    fc.constantFrom(...accepted).chain(media => fc.constantFrom(
      `${media}x`, `x${media}`, `${media}/x`, `${media}(x)`, `${media},text/html`, `${media} text/html`, media.replace('/', ' / '), media.replace('/', ''),
      media.split('/')[0]!, `/${media.split('/')[1]!}`, `${media.split('/')[0]!}/`, `"${media}"`, `${media.replace('/', '\\/')}`
    )),
    fc.constantFrom('', ';', '/', ';charset=utf-8', 'undefined', 'null'),
    headerText
  ).filter(header => {
    // Fastify's reading of the header: type before the first '/', subtype up to the first ';'.
    const media = header.split(';')[0]!
    const slash = media.indexOf('/')
    if (slash === -1) return true
    const normalised = `${media.slice(0, slash).trimStart().toLowerCase()}/${media.slice(slash + 1).trimEnd().toLowerCase()}`
    return !accepted.includes(normalised)
  })
}

/** A raw HTTP exchange over a real socket: the request's bytes as given, the answer as received. */
export async function rawExchange (port: number, request: Buffer, { holdOpen = false }: { holdOpen?: boolean } = {}): Promise<Answer> {
  const received = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect(port, '127.0.0.1', () => {
      // holdOpen: the request is not finished (a body shorter than its Content-Length); the answer must come anyway.
      if (holdOpen) socket.write(request)
      else socket.end(request)
    })
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')))
    socket.on('data', chunk => {
      chunks.push(chunk)
      if (holdOpen && isComplete(Buffer.concat(chunks))) socket.destroy()
    })
    socket.on('close', () => resolve(Buffer.concat(chunks)))
    // A server that answers before the whole body is sent may reset the connection under us.
    socket.on('error', error => chunks.length > 0 ? resolve(Buffer.concat(chunks)) : reject(error))
  })
  return parseAnswer(received)
}

function isComplete (bytes: Buffer): boolean {
  const end = bytes.indexOf('\r\n\r\n')
  if (end === -1) return false
  const length = /\r\ncontent-length: *(\d+)/i.exec(bytes.subarray(0, end).toString('latin1'))
  return length !== null && bytes.length - end - 4 >= Number(length[1])
}

function parseAnswer (bytes: Buffer): Answer {
  const end = bytes.indexOf('\r\n\r\n')
  assert.ok(end !== -1, `an HTTP answer, got ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`)
  const [status, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  const statusCode = Number(/^HTTP\/1\.1 (\d{3}) /.exec(status!)?.[1])
  let body = bytes.subarray(end + 4)
  if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']))
  return { statusCode, headers, body: body.toString('utf8') }
}

/** The bytes of a request: the head in latin1, the body as given. */
export function requestBytes (head: string[], body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), body])
}
