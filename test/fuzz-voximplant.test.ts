// Property-based fuzzing of POST /callbacks/voximplant (issue 8), through real requests: valid
// signed batches of every type with arbitrary field values still pass, and every mutation of one,
// every random body, content type and method is a 4xx in the documented shape, with no event and no
// polluted prototype. Seeded (FUZZ_SEED) and repeatable; see test/fuzz-arbitraries.ts.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Kind } from '@sinclair/typebox'
import fc from 'fast-check'
import t from 'tap'
import { voximplantPayloads, VoximplantCallbackSchemas, VoximplantCommonFieldsSchema, type VoximplantCallbackType } from '../lib/index.js'
import {
  acceptedContentType, announceSeed, anyString, assertNotEchoed, assertRefused, assertPrototypesIntact, assertSuccess,
  DECIMAL_INTEGER, DECIMAL_NUMBER, escapedKey, fuzzApp, getAt, hasPrototypeKeys, holds, HTTP_METHODS, invalidUtf8, jsonSpace,
  keyEscapes, KNOWN_EVENT_NAMES, locate, Members, pointer, RawJson, refusedContentType, requestBytes, rawExchange, safeJson, setAt,
  snapshotPrototypes, toJson, valueOf, wrongTypeFor, otherMethodOutcome, type Answer, type ExpectedError, type FuzzApp, type Path
} from './fuzz-arbitraries.js'
import { VOX } from './helpers.js'

announceSeed(t)
// 2,510 cases take about 19 s on a quiet 2-core machine; this budget lets them finish with other
// work on the CPU (tap's 30 s default did not), and still ends a run that hangs.
t.setTimeout(120_000)

const URL = '/callbacks/voximplant'
const SECRET = { apiKey: VOX.apiKey, salt: VOX.salt }
// Small bounds keep the cases that cross them cheap; the defaults are tested in voximplant.test.ts.
const MAX_ITEMS = 6
const BODY_LIMIT = 192 * 1024
const OPTIONS = { voximplant: { secret: SECRET, maxItems: MAX_ITEMS, bodyLimit: BODY_LIMIT } }
const JSON_TYPES = ['application/json', 'text/plain']
const KNOWN_TYPES = Object.keys(voximplantPayloads) as VoximplantCallbackType[]
// README: the four payloads documented nested twice, which may arrive nested once.
const NESTED_TYPES = new Set(['sms_inbound', 'transcription_complete', 'phone_number_activation_status_changed', 'new_invoice'])
const OPTIONAL_FIELDS = ['account_name', 'account_email', 'language_code', 'account_first_name', 'account_last_name', 'currency']
const COMMON_FIELDS = new Set(['callback_id', 'type', 'account_id', 'hash', 'balance', ...OPTIONAL_FIELDS])
/** A value no answer may quote back; every hostile case carries it. */
const ECHO = 'ECHO-5d1b7c0e'

const kebab = (type: string): string => type.replaceAll('_', '-')

/** md5(salt + account_id + api_key + callback_id), as Voximplant signs, computed here and not by the plugin. */
function sign (accountId: unknown, callbackId: unknown): string {
  return createHash('md5').update(`${SECRET.salt}${String(accountId)}${SECRET.apiKey}${String(callbackId)}`, 'utf8').digest('hex')
}

// ---------------------------------------------------------------------------------------------
// Valid items

interface ItemCase {
  type: string
  known: boolean
  /** What goes on the wire. */
  wire: Record<string, unknown>
  /** What handlers must get: numbers as numbers, the payload nested as documented, the rest as sent. */
  expected: Record<string, unknown>
}

const idValue = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 10_000_000 }) },
  { weight: 1, arbitrary: fc.maxSafeNat() },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 999_999_999_999_999, 1e15, 2 ** 53 - 1) }
)

/** Keys a payload may carry besides its documented fields: anything but `__proto__`, names of built-ins included. */
const extraKey = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__defineGetter__', 'then', 'length', '0', '')
).filter(key => key !== '__proto__' && !COMMON_FIELDS.has(key) && !(KNOWN_TYPES as string[]).includes(key))
const extras = fc.dictionary(extraKey, safeJson, { maxKeys: 3 }).filter(value => !hasPrototypeKeys(value))

const hashCase = fc.constantFrom('lower', 'upper', 'mixed')
function withCase (hash: string, how: string): string {
  if (how === 'upper') return hash.toUpperCase()
  if (how === 'mixed') return [...hash].map((c, i) => i % 2 === 0 ? c.toUpperCase() : c).join('')
  return hash
}

/** Types this version does not know whose kebab-case is no known event name either. */
const unknownType = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9_]{0,39}$/),
  fc.string({ minLength: 1, maxLength: 100 }),
  fc.constantFrom('MIN_BALANCE', 'min_balance ', ' min_balance', 'minbalance', 'min__balance', 'sms_inbound_v2', '__proto__', 'constructor', 'toString', 'x'.repeat(100))
).filter(type => type.length >= 1 && type.length <= 100 && !(KNOWN_TYPES as string[]).includes(type) && !KNOWN_EVENT_NAMES.includes(kebab(type)))

interface ItemDraft {
  type: string
  known: boolean
  callbackId: number
  accountId: number
  optional: Record<string, string>
  balance: number
  payload?: unknown
  extra: Record<string, unknown>
  hashCase: string
  numbersAsText: number[]
  nestOnce: boolean
}

const draftFields = {
  callbackId: idValue,
  accountId: idValue,
  optional: fc.record(Object.fromEntries(OPTIONAL_FIELDS.map(key => [key, anyString])), { requiredKeys: [] }) as fc.Arbitrary<Record<string, string>>,
  balance: valueOf(VoximplantCommonFieldsSchema.properties.balance) as fc.Arbitrary<number>,
  extra: extras,
  hashCase,
  numbersAsText: fc.array(fc.nat(), { maxLength: 4 }),
  nestOnce: fc.boolean()
}

const knownDraft: fc.Arbitrary<ItemDraft> = fc.constantFrom(...KNOWN_TYPES).chain(type => {
  const schema = voximplantPayloads[type]
  const empty = Object.keys(schema.properties).length === 0
  const payload = empty ? fc.option(valueOf(schema), { nil: undefined }) : valueOf(schema)
  return fc.record({ ...draftFields, payload, type: fc.constant(type as string), known: fc.constant(true) })
})

const unknownDraft: fc.Arbitrary<ItemDraft> = fc.record({ ...draftFields, type: unknownType, known: fc.constant(false) })

function schemaOf (type: string, known: boolean) {
  return known ? VoximplantCallbackSchemas[type as VoximplantCallbackType] : VoximplantCommonFieldsSchema
}

/** The item a draft describes, as handlers must see it, and as it goes on the wire. */
function build (draft: ItemDraft): ItemCase {
  const { type, known, callbackId, accountId } = draft
  const item: Record<string, unknown> = {
    callback_id: callbackId,
    type,
    account_id: accountId,
    hash: withCase(sign(accountId, callbackId), draft.hashCase),
    ...draft.optional,
    balance: draft.balance
  }
  if (draft.payload !== undefined) item[type] = draft.payload
  for (const [key, value] of Object.entries(draft.extra)) setAt(item, [key], value)
  const expected = JSON.parse(toJson(item)) as Record<string, unknown>
  const wire = structuredClone(expected)
  // Numbers the schema has, sent as the decimal text they print as (README: read as the number).
  const numbers = locate(schemaOf(type, known), expected).filter(({ path, schema }) => {
    const value = getAt(expected, path)
    if (typeof value !== 'number') return false
    const kinds = schema.anyOf === undefined ? [schema[Kind]] : schema.anyOf.map(member => member[Kind])
    if (kinds.includes('Number')) return DECIMAL_NUMBER.test(String(value))
    return kinds.includes('Integer') && DECIMAL_INTEGER.test(String(value))
  })
  for (const index of draft.numbersAsText) {
    if (numbers.length === 0) break
    const { path } = numbers[index % numbers.length]!
    setAt(wire, path, String(getAt(expected, path)))
  }
  // A doubly nested payload, sent nested once.
  const payload = wire[type] as Record<string, unknown> | undefined
  if (known && draft.nestOnce && NESTED_TYPES.has(type) && payload !== undefined) wire[type] = payload[type]
  return { type, known, wire, expected }
}

const item: fc.Arbitrary<ItemCase> = fc.oneof({ weight: 5, arbitrary: knownDraft }, { weight: 1, arbitrary: unknownDraft }).map(build)
const batch = fc.array(item, { minLength: 1, maxLength: MAX_ITEMS })

/** Every item reached onAny, in order, with the expected name, id and payload; each known one its own named handler too, and nothing else ran. */
function assertDelivered (fuzz: FuzzApp, items: ItemCase[], context: string): void {
  assert.equal(fuzz.any.length, items.length, `${context}: one onAny event per item`)
  items.forEach(({ type, expected }, i) => {
    const event = fuzz.any[i]!
    assert.equal(event.name, kebab(type), context)
    assert.equal(event.provider, 'voximplant', context)
    assert.equal(event.id, `voximplant:${String(expected.account_id)}:${String(expected.callback_id)}`, context)
    assert.ok(event.receivedAt instanceof Date, context)
    assert.deepStrictEqual(event.payload, expected, `${context}: item ${i}'s payload`)
  })
  const named = items.filter(i => i.known)
  assert.deepEqual(fuzz.named.map(n => n.handler), named.map(i => kebab(i.type)), `${context}: the named handlers of the known types ran, and only they`)
  fuzz.named.forEach(({ event }, i) => assert.deepStrictEqual(event.payload, named[i]!.expected, context))
}

/** POSTs `body` (or sends it with `method`), with `contentType` as the Content-Type header, or none when undefined. */
async function post (fuzz: FuzzApp, body: string | Buffer, contentType: string | undefined, method = 'POST'): Promise<Answer> {
  const headers: Record<string, string> = contentType === undefined ? {} : { 'content-type': contentType }
  return await fuzz.app.inject({ method: method as 'POST', url: URL, headers, payload: body })
}

const bodyOf = (items: ItemCase[]): string => toJson({ callbacks: items.map(i => i.wire) })

t.test('valid signed batches of every type pass, whatever their field values, numbers as text, nesting and content type', async t => {
  const fuzz = await fuzzApp(OPTIONS)
  t.teardown(() => fuzz.app.close())
  const prototypes = snapshotPrototypes()
  // Bytes that are not UTF-8 inside a string value, which is read as U+FFFD as everywhere in Node.
  const rawBytes = fc.option(fc.record({ at: fc.nat(), bytes: invalidUtf8, field: fc.constantFrom(...OPTIONAL_FIELDS) }), { nil: undefined })
  await holds(t, 'a valid batch is a 200 and every item is delivered as documented', fc.asyncProperty(batch, acceptedContentType(JSON_TYPES), rawBytes, async (generated, contentType, raw) => {
    fuzz.reset()
    // A copy: fast-check may hand the generated items to another case while shrinking.
    const items = generated.map(i => ({ ...i, wire: { ...i.wire }, expected: { ...i.expected } }))
    let body: string | Buffer = bodyOf(items)
    if (raw !== undefined) {
      const target = items[raw.at % items.length]!
      const marker = 'RAW-BYTES-HERE'
      target.wire[raw.field] = `a${marker}b`
      target.expected[raw.field] = `a${raw.bytes.toString('utf8')}b`
      const [before, after] = bodyOf(items).split(marker) as [string, string]
      body = Buffer.concat([Buffer.from(before), raw.bytes, Buffer.from(after)])
    }
    const answer = await post(fuzz, body, contentType)
    assertSuccess(answer, 'a valid batch')
    assertDelivered(fuzz, items, 'a valid batch')
    assertPrototypesIntact(prototypes, 'a valid batch')
  }), 500)
})

// ---------------------------------------------------------------------------------------------
// Mutations of a valid batch

type Outcome = ExpectedError | { delivered: ItemCase[] } | { noRoute: string }

interface Mutant {
  label: string
  body: string | Buffer
  contentType?: string | undefined
  method?: string
  outcome: Outcome
}

const BAD_IDS: unknown[] = [
  -1, -5, 1.5, 0.1, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, Number.MAX_VALUE,
  new RawJson('1e400'), new RawJson('-1e400'), new RawJson('12345678901234567890'), new RawJson('9007199254740993'),
  '1e3', '0x1F', ' 1', '1 ', '01', '+1', '', '١٢', '１', 'NaN', 'Infinity', '-5', '1.5', '1234567890123456', '12345678901234567890', '1_000', '1,000',
  true, false, null, [], {}, [1], { value: 1 }
]

const FORGED_HASHES: unknown[] = [
  '', ' ', '0'.repeat(32), 'f'.repeat(31), 'f'.repeat(33), 'g'.repeat(32), 'z'.repeat(32), '0'.repeat(64), 'é'.repeat(32),
  'd41d8cd98f00b204e9800998ecf8427e', 'null', 0, 1, null, true, [], {}, ['0'.repeat(32)]
]

/** Bodies that are not `{ callbacks: [...] }` or whose items are not objects. */
function wrapped (items: ItemCase[]): fc.Arbitrary<Mutant> {
  const callbacks = items.map(i => structuredClone(i.expected))
  const n = callbacks.length
  return fc.tuple(fc.nat({ max: n - 1 }), safeJson.filter(v => typeof v !== 'object' || v === null)).chain(([i, scalar]) => fc.constantFrom<Mutant>(
    { label: 'the batch in an array', body: toJson([{ callbacks }]), outcome: { code: 'INVALID_PAYLOAD', path: '' } },
    { label: 'the batch twice in an array', body: toJson([[{ callbacks }]]), outcome: { code: 'INVALID_PAYLOAD', path: '' } },
    { label: 'the items without the batch', body: toJson(callbacks), outcome: { code: 'INVALID_PAYLOAD', path: '' } },
    { label: 'one item as the batch', body: toJson({ callbacks: callbacks[i] }), outcome: { code: 'INVALID_PAYLOAD', path: '/callbacks' } },
    { label: 'the items keyed by index', body: toJson({ callbacks: { ...callbacks } }), outcome: { code: 'INVALID_PAYLOAD', path: '/callbacks' } },
    { label: 'the batch one level down', body: toJson({ data: { callbacks } }), outcome: { code: 'INVALID_PAYLOAD', path: '/callbacks' } },
    { label: 'the callbacks under another name', body: toJson({ Callbacks: callbacks }), outcome: { code: 'INVALID_PAYLOAD', path: '/callbacks' } },
    { label: 'the items in a nested array', body: toJson({ callbacks: [callbacks] }), outcome: { code: 'UNAUTHORIZED' } },
    { label: 'an item in an array', body: toJson({ callbacks: callbacks.map((c, j) => j === i ? [c] : c) }), outcome: { code: 'UNAUTHORIZED' } },
    { label: 'an item replaced by a scalar', body: toJson({ callbacks: callbacks.map((c, j) => j === i ? scalar : c) }), outcome: { code: 'UNAUTHORIZED' } },
    { label: 'a scalar body', body: toJson(scalar), outcome: { code: 'INVALID_PAYLOAD', path: '' } }
  ))
}

/** A key that sets a prototype when a handler merges the payload: `__proto__`, or `constructor` holding `prototype`; escaped or not. */
function prototypeKeys (items: ItemCase[]): fc.Arbitrary<Mutant> {
  const body = { callbacks: items.map(i => structuredClone(i.expected)) }
  // Every object of the body: the batch, each item, and every object inside an item.
  const objects: Path[] = [[]]
  for (const path of locateObjects(body.callbacks, ['callbacks'])) objects.push(path)
  const pollution = fc.oneof(safeJson, fc.constant({ polluted: true, isAdmin: true }), fc.constant({ toString: 'x' }))
  const protoMember = fc.tuple(keyEscapes, jsonSpace, pollution).map(([how, space, value]) => ({ what: '__proto__', member: [escapedKey('__proto__', how) + space, value] as const }))
  const constructorMember = fc.tuple(keyEscapes, keyEscapes, jsonSpace, pollution).map(([how, how2, space, value]) =>
    ({ what: 'constructor.prototype', member: [escapedKey('constructor', how) + space, new Members([[escapedKey('prototype', how2), value]])] as const }))
  return fc.tuple(fc.constantFrom(...objects), fc.oneof(protoMember, constructorMember), fc.nat()).map(([path, { what, member }, at]): Mutant => {
    const target = path.length === 0 ? body : getAt(body, path) as Record<string, unknown>
    const members: Array<readonly [string, unknown]> = Object.entries(target).map(([key, value]) => [JSON.stringify(key), value])
    // After any `constructor` the object has already: of a repeated key, the last one is read.
    const earliest = what === '__proto__' ? 0 : members.findIndex(([key]) => key === '"constructor"') + 1
    members.splice(earliest + at % (members.length + 1 - earliest), 0, member)
    const tree = structuredClone(body) as unknown
    const written = new Members(members)
    const text = path.length === 0 ? toJson(written) : (setAt(tree, path, written), toJson(tree))
    return { label: `a ${what} key (${member[0]}) at ${pointer(path)}`, body: text, outcome: { code: 'MALFORMED_BODY' } }
  })
}

function locateObjects (value: unknown, path: Path): Path[] {
  if (typeof value !== 'object' || value === null) return []
  const found: Path[] = Array.isArray(value) ? [] : [path]
  for (const [key, member] of Object.entries(value)) found.push(...locateObjects(member, [...path, Array.isArray(value) ? Number(key) : key]))
  return found
}

/** A key given twice: the last one is the one read, by the hash check and the handlers alike. */
function repeatedKeys (items: ItemCase[]): fc.Arbitrary<Mutant> {
  const n = items.length
  const callbacks = items.map(i => i.expected)
  const decoys: Record<string, fc.Arbitrary<unknown>> = {
    hash: fc.oneof(fc.constantFrom(...FORGED_HASHES), idValue.map(id => sign(id, id))),
    account_id: fc.oneof(fc.constantFrom(...BAD_IDS), idValue),
    callback_id: fc.oneof(fc.constantFrom(...BAD_IDS), idValue),
    type: fc.oneof(fc.constantFrom(...KNOWN_TYPES), anyString),
    balance: safeJson
  }
  const itemKey = fc.tuple(fc.nat({ max: n - 1 }), fc.constantFrom(...Object.keys(decoys)), fc.boolean()).chain(([i, key, decoyLast]) => decoys[key]!.map((decoy): Mutant | undefined => {
    const original = callbacks[i]!
    const members: Array<readonly [string, unknown]> = []
    for (const [k, value] of Object.entries(original)) {
      if (k === key && !decoyLast) members.push([JSON.stringify(k), decoy])
      members.push([JSON.stringify(k), value])
      if (k === key && decoyLast) members.push([JSON.stringify(k), decoy])
    }
    const body = toJson({ callbacks: callbacks.map((c, j) => j === i ? new Members(members) : c) })
    const forged = decoyLast && ['hash', 'account_id', 'callback_id'].includes(key) && !sameValue(key, decoy, original[key])
    if (forged) return { label: `${key} repeated, a forged value last`, body, outcome: { code: 'UNAUTHORIZED' } }
    if (!decoyLast) return { label: `${key} repeated, the genuine value last`, body, outcome: { delivered: items } }
    return undefined
  })).filter((m): m is Mutant => m !== undefined)
  const forgedItem = { ...structuredClone(callbacks[0]!), hash: '0'.repeat(32) }
  const batchKey = fc.constantFrom<[string, unknown, boolean]>(
    ['an empty batch first', [], true], ['junk first', 'junk', true], ['a forged batch first', [forgedItem], true],
    ['an empty batch last', [], false], ['a forged batch last', [forgedItem], false]
  ).map(([what, decoy, genuineLast]): Mutant => {
    const members: Array<readonly [string, unknown]> = genuineLast ? [['"callbacks"', decoy], ['"callbacks"', callbacks]] : [['"callbacks"', callbacks], ['"callbacks"', decoy]]
    const body = toJson(new Members(members))
    if (genuineLast) return { label: `callbacks repeated, ${what}`, body, outcome: { delivered: items } }
    return { label: `callbacks repeated, ${what}`, body, outcome: Array.isArray(decoy) && decoy.length === 0 ? { delivered: [] } : { code: 'UNAUTHORIZED' } }
  })
  return fc.oneof(itemKey, batchKey)
}

function sameValue (key: string, decoy: unknown, genuine: unknown): boolean {
  if (key === 'hash') return typeof decoy === 'string' && decoy.toLowerCase() === String(genuine).toLowerCase()
  return decoy === genuine || (typeof decoy === 'string' && DECIMAL_INTEGER.test(decoy) && Number(decoy) === genuine)
}

/** Everything wrong that can be done to one valid batch, with what the answer must be. */
function mutants (items: ItemCase[]): fc.Arbitrary<Mutant> {
  const n = items.length
  const pick = fc.nat({ max: n - 1 })
  const callbacks = (): Array<Record<string, unknown>> => items.map(i => structuredClone(i.expected))
  const json = (value: unknown): string => toJson({ callbacks: value })

  const flippedHash = fc.tuple(pick, fc.nat({ max: 31 }), fc.nat({ max: 14 })).map(([i, at, digit]): Mutant => {
    const list = callbacks()
    const hash = list[i]!.hash as string
    list[i]!.hash = hash.slice(0, at) + '0123456789abcdef'.replace(hash[at]!.toLowerCase(), '')[digit]! + hash.slice(at + 1)
    return { label: 'a hash with one digit changed', body: json(list), outcome: { code: 'UNAUTHORIZED' } }
  })
  const forgedHash = fc.tuple(pick, fc.oneof(fc.constantFrom(...FORGED_HASHES), fc.tuple(idValue, idValue).map(([a, c]) => sign(a, c)), fc.constant(undefined))).map(([i, hash]): Mutant => {
    const list = callbacks()
    if (hash === undefined) delete list[i]!.hash
    else if (hash === sign(list[i]!.account_id, list[i]!.callback_id)) return { label: 'the genuine hash', body: json(list), outcome: { delivered: items } }
    else list[i]!.hash = hash
    return { label: `a forged hash ${JSON.stringify(hash)}`, body: json(list), outcome: { code: 'UNAUTHORIZED' } }
  })
  const otherId = fc.tuple(pick, fc.constantFrom('account_id', 'callback_id'), idValue).map(([i, field, id]): Mutant => {
    const list = callbacks()
    if (list[i]![field] === id) return { label: 'the same id', body: json(list), outcome: { delivered: items } }
    list[i]![field] = id
    return { label: `another ${field}, the hash kept`, body: json(list), outcome: { code: 'UNAUTHORIZED' } }
  })
  const badId = fc.tuple(pick, fc.constantFrom('account_id', 'callback_id'), fc.constantFrom(...BAD_IDS), fc.boolean()).map(([i, field, id, resign]): Mutant => {
    const list = callbacks()
    list[i]![field] = id
    // Signed over the id's own text, or not: neither makes it an id.
    if (resign) {
      const text = (value: unknown): string => value instanceof RawJson ? value.text : typeof value === 'string' ? value : JSON.stringify(value)
      list[i]!.hash = sign(text(list[i]!.account_id), text(list[i]!.callback_id))
    }
    return { label: `${field} ${JSON.stringify(id instanceof RawJson ? id.text : id)}`, body: json(list), outcome: { code: 'UNAUTHORIZED' } }
  })
  const removed = fc.tuple(pick, fc.constantFrom('hash', 'account_id', 'callback_id', 'type', 'balance', 'payload')).map(([i, field]): Mutant => {
    const list = callbacks()
    const { type, known } = items[i]!
    const key = field === 'payload' ? type : field
    const required = field !== 'payload' || (known && Object.keys(voximplantPayloads[type as VoximplantCallbackType].properties).length > 0)
    delete list[i]![key]
    if (!required) return { label: `no ${key} (it may be absent)`, body: json(list), outcome: { delivered: items.map((it, j) => j === i ? { ...it, expected: list[i]! } : it) } }
    const signing = ['hash', 'account_id', 'callback_id'].includes(field)
    return { label: `no ${key}`, body: json(list), outcome: signing ? { code: 'UNAUTHORIZED' } : { code: 'INVALID_PAYLOAD', path: pointer(['callbacks', i, key]) } }
  })
  const wrongType = pick.chain(i => {
    const { type, known, expected } = items[i]!
    const places = locate(schemaOf(type, known), expected).filter(({ path }) => path.length > 0 && !['hash', 'account_id', 'callback_id'].includes(String(path[0])))
    return fc.constantFrom(...places).chain(({ path, schema }) => wrongTypeFor(schema).map((value): Mutant => {
      const list = callbacks()
      setAt(list[i], path, value)
      return { label: `${pointer(path)} = ${JSON.stringify(value)}`, body: json(list), outcome: { code: 'INVALID_PAYLOAD', path: pointer(['callbacks', i, ...path]) } }
    }))
  })
  // Numbers past what a double holds become Infinity, which no number field takes.
  const hugeNumber = pick.chain(i => {
    const { type, known, expected } = items[i]!
    const places = locate(schemaOf(type, known), expected).filter(({ path, schema }) =>
      (schema[Kind] === 'Number' || schema[Kind] === 'Integer') && !['account_id', 'callback_id'].includes(String(path[0])))
    return fc.tuple(fc.constantFrom(...places), fc.constantFrom('1e400', '-1e400', '1E999', `9${'9'.repeat(400)}`)).map(([{ path }, literal]): Mutant => {
      const list = callbacks()
      setAt(list[i], path, new RawJson(literal))
      return { label: `${pointer(path)} = ${literal.slice(0, 10)}`, body: json(list), outcome: { code: 'INVALID_PAYLOAD', path: pointer(['callbacks', i, ...path]) } }
    })
  })
  const truncated = fc.nat().map((at): Mutant => {
    const bytes = Buffer.from(json(callbacks()))
    return { label: `cut after ${at % bytes.length} bytes`, body: bytes.subarray(0, at % bytes.length), outcome: { code: 'MALFORMED_BODY' } }
  })
  // A raw control character inside a string is not JSON; escaped (\u0000) it is, and the valid batches have those.
  const rawControl = fc.tuple(pick, fc.constantFrom(...OPTIONAL_FIELDS), fc.integer({ min: 0, max: 0x1f })).map(([i, field, code]): Mutant => {
    const list = callbacks()
    list[i]![field] = new RawJson(`"a${String.fromCharCode(code)}b"`)
    return { label: `a raw U+${code.toString(16).padStart(4, '0')} in ${field}`, body: json(list), outcome: { code: 'MALFORMED_BODY' } }
  })
  const bytesBetweenTokens = fc.tuple(invalidUtf8, fc.constantFrom('start', 'after {', 'before }', 'end')).map(([bytes, where]): Mutant => {
    const text = Buffer.from(json(callbacks()))
    const at = { start: 0, 'after {': 1, 'before }': text.length - 1, end: text.length }[where]
    return { label: `bytes that are not UTF-8 at the ${where}`, body: Buffer.concat([text.subarray(0, at), bytes, text.subarray(at)]), outcome: { code: 'MALFORMED_BODY' } }
  })
  const wrongContentType = refusedContentType(JSON_TYPES).map((contentType): Mutant => ({
    label: `content type ${JSON.stringify(contentType)}`, body: bodyOf(items), contentType, outcome: { code: 'UNSUPPORTED_MEDIA_TYPE' }
  }))
  const noContentType: fc.Arbitrary<Mutant> = fc.constant({ label: 'no content type', body: bodyOf(items), contentType: undefined, outcome: { code: 'UNSUPPORTED_MEDIA_TYPE' } })
  // Only POST has a route here.
  const otherMethod = fc.tuple(fc.constantFrom(...HTTP_METHODS.filter(m => m !== 'POST')), acceptedContentType(JSON_TYPES)).map(([method, contentType]): Mutant => ({
    label: method, body: bodyOf(items), method, contentType, outcome: otherMethodOutcome(method, 'POST')
  }))

  return fc.oneof(
    flippedHash, forgedHash, otherId, badId, removed, wrongType, hugeNumber, truncated, rawControl, bytesBetweenTokens,
    wrapped(items), prototypeKeys(items), repeatedKeys(items), wrongContentType, noContentType, otherMethod
  )
}

/** Every item carries a value no answer may quote. */
function marked (items: ItemCase[]): ItemCase[] {
  return items.map(i => ({ ...i, wire: { ...i.wire, account_last_name: ECHO }, expected: { ...i.expected, account_last_name: ECHO } }))
}

async function check (fuzz: FuzzApp, mutant: Mutant, prototypes: ReturnType<typeof snapshotPrototypes>): Promise<void> {
  fuzz.reset()
  const answer = await post(fuzz, mutant.body, 'contentType' in mutant ? mutant.contentType : 'application/json', mutant.method)
  const { outcome, label } = mutant
  if ('delivered' in outcome) {
    assertSuccess(answer, label)
    assertDelivered(fuzz, outcome.delivered, label)
  } else {
    assertRefused(fuzz, answer, outcome, label)
    assertNotEchoed(answer, ECHO, label)
  }
  assertPrototypesIntact(prototypes, label)
}

t.test('every mutation of a valid batch is refused as documented, with nothing emitted', async t => {
  const fuzz = await fuzzApp(OPTIONS)
  t.teardown(() => fuzz.app.close())
  const prototypes = snapshotPrototypes()
  const mutated = batch.map(marked).chain(items => mutants(items))
  await holds(t, 'a mutated batch gets the answer its mutation calls for', fc.asyncProperty(mutated, async mutant => {
    await check(fuzz, mutant, prototypes)
  }), 1100)
})

// ---------------------------------------------------------------------------------------------
// Random bodies

/** The README's order, for any body: type (415), size (413), JSON (400), the batch (400, 413), the hashes (401). */
function expectedFor (body: Buffer, contentType: string | undefined, accepted: boolean): Outcome {
  if (contentType === undefined && body.length === 0) return { code: 'INVALID_PAYLOAD', path: '' }
  if (!accepted) return { code: 'UNSUPPORTED_MEDIA_TYPE' }
  if (body.length > BODY_LIMIT) return { code: 'PAYLOAD_TOO_LARGE' }
  let value: unknown
  try {
    const text = body.toString('utf8')
    value = JSON.parse(text.startsWith('\ufeff') ? text.slice(1) : text)
  } catch {
    return { code: 'MALFORMED_BODY' }
  }
  if (hasPrototypeKeys(value)) return { code: 'MALFORMED_BODY' }
  const callbacks = (value as { callbacks?: unknown } | null)?.callbacks
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { code: 'INVALID_PAYLOAD', path: '' }
  if (!Array.isArray(callbacks)) return { code: 'INVALID_PAYLOAD', path: '/callbacks' }
  if (callbacks.length > MAX_ITEMS) return { code: 'BATCH_TOO_LARGE' }
  // Nothing random is signed by the secret.
  return callbacks.length === 0 ? { delivered: [] } : { code: 'UNAUTHORIZED' }
}

const itemLike = fc.record({
  callback_id: fc.oneof(idValue, fc.constantFrom(...BAD_IDS), anyString),
  account_id: fc.oneof(idValue, fc.constantFrom(...BAD_IDS)),
  hash: fc.oneof(fc.stringMatching(/^[0-9a-fA-F]{32}$/), fc.constantFrom(...FORGED_HASHES)),
  type: fc.oneof(fc.constantFrom(...KNOWN_TYPES), anyString),
  balance: fc.oneof(fc.double(), anyString),
  min_balance: safeJson
}, { requiredKeys: [] })

const randomBody: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map(bytes => Buffer.from(bytes)),
  anyString.map(text => Buffer.from(text)),
  fc.jsonValue({ maxDepth: 4 }).map(value => Buffer.from(JSON.stringify(value))),
  fc.record({ callbacks: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.array(fc.oneof(itemLike, fc.jsonValue({ maxDepth: 2 })), { maxLength: MAX_ITEMS + 3 })), other: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] })
    .map(value => Buffer.from(JSON.stringify(value))),
  fc.tuple(fc.constantFrom('\ufeff', ' ', '\n', '', '\u0000'), fc.array(itemLike, { maxLength: 3 }), fc.constantFrom('', ' ', '\n\n', 'x', '}', ',')).map(([before, items, after]) => Buffer.from(before + JSON.stringify({ callbacks: items }) + after)),
  fc.constantFrom('', '{}', '[]', 'null', '{"callbacks":null}', '{"callbacks":[]}', '{"callbacks":[{}]}', '{"callbacks":[null]}', '{"callbacks":"[]"}', '{"callbacks":[],"callbacks":{}}', '\ufeff{"callbacks":[]}', '{"__proto__":{"callbacks":[]}}')
    .map(text => Buffer.from(text))
)

const contentTypeCase = fc.oneof(
  { weight: 4, arbitrary: acceptedContentType(JSON_TYPES).map(contentType => ({ contentType: contentType as string | undefined, accepted: true })) },
  { weight: 1, arbitrary: refusedContentType(JSON_TYPES).map(contentType => ({ contentType: contentType as string | undefined, accepted: false })) },
  { weight: 1, arbitrary: fc.constant({ contentType: undefined, accepted: false }) }
)

t.test('random bodies, under any content type, get the README\'s answer for what they are, and never an event', async t => {
  const fuzz = await fuzzApp(OPTIONS)
  t.teardown(() => fuzz.app.close())
  const prototypes = snapshotPrototypes()
  await holds(t, 'a random body is refused (or is an empty batch)', fc.asyncProperty(randomBody, contentTypeCase, async (body, { contentType, accepted }) => {
    const outcome = expectedFor(body, contentType, accepted)
    await check(fuzz, { label: `${JSON.stringify(contentType)} ${JSON.stringify(body.toString('utf8').slice(0, 80))}`, body, contentType, outcome }, prototypes)
  }), 600)
})

// ---------------------------------------------------------------------------------------------
// Unknown types never reach the handler of a known event

t.test('an item of an unknown type whose kebab-case is a known event name is refused, never delivered under that name', async t => {
  const fuzz = await fuzzApp(OPTIONS)
  t.teardown(() => fuzz.app.close())
  const prototypes = snapshotPrototypes()
  // `min-balance` (a hyphen where Voximplant writes `_`), `traffic_threshold`: not types Voximplant
  // has. Under a known event's name, a handler (named, or onAny narrowing by name) would rely on a
  // payload type nobody checked (a min-balance handler reads payload.min_balance.is_repeated).
  const lookalike = fc.oneof(
    fc.tuple(fc.constantFrom(...KNOWN_TYPES.filter(type => type.includes('_'))), fc.integer({ min: 1, max: 2 ** 20 })).map(([type, mask]) => {
      const parts = type.split('_')
      let text = parts[0]!
      parts.slice(1).forEach((part, i) => { text += (((mask >>> i) & 1) === 1 || i === parts.length - 2 ? '-' : '_') + part })
      return text
    }),
    fc.constantFrom('traffic-threshold', 'traffic_threshold')
  )
  const draft = fc.tuple(unknownDraft, lookalike).map(([d, type]) => build({ ...d, type }))
  await holds(t, 'a look-alike type is a 400 naming its type, and reaches no handler', fc.asyncProperty(draft, async item => {
    fuzz.reset()
    const answer = await post(fuzz, bodyOf([item]), 'application/json')
    assertRefused(fuzz, answer, { code: 'INVALID_PAYLOAD', path: '/callbacks/0/type' }, item.type)
    assertPrototypesIntact(prototypes, item.type)
  }), 100)
})

// ---------------------------------------------------------------------------------------------
// Bounds: long strings, thousands of fields, thousands of items, deep nesting

interface Sized { label: string, body: string, outcome: Outcome }

function depthOf (value: unknown): number {
  let depth = 0
  while (Array.isArray(value)) {
    depth++
    value = value[0]
  }
  return depth
}

t.test('long strings, thousands of fields, thousands of items and deep nesting stay within the bounds', async t => {
  const fuzz = await fuzzApp(OPTIONS)
  t.teardown(() => fuzz.app.close())
  const prototypes = snapshotPrototypes()
  const one = item.filter(i => i.known)
  const longString = fc.tuple(one, fc.oneof(fc.integer({ min: 1_000, max: 50_000 }), fc.integer({ min: BODY_LIMIT - 1_500, max: BODY_LIMIT + 1_500 })), fc.string({ minLength: 1, maxLength: 2 }))
    .map(([it, length, unit]): Sized => {
      const text = unit.repeat(Math.ceil(length / unit.length)).slice(0, length)
      const long = { ...it, wire: { ...it.wire, account_name: text }, expected: { ...it.expected, account_name: text } }
      const body = bodyOf([long])
      return { label: `account_name of ${length} characters`, body, outcome: Buffer.byteLength(body) > BODY_LIMIT ? { code: 'PAYLOAD_TOO_LARGE' } : { delivered: [long] } }
    })
  const manyFields = fc.tuple(one, fc.integer({ min: 500, max: 12_000 })).map(([it, count]): Sized => {
    const fields = Object.fromEntries(Array.from({ length: count }, (_, i) => [`field_${i}`, i]))
    const wide = { ...it, wire: { ...it.wire, ...fields }, expected: { ...it.expected, ...fields } }
    const body = bodyOf([wide])
    return { label: `${count} more fields`, body, outcome: Buffer.byteLength(body) > BODY_LIMIT ? { code: 'PAYLOAD_TOO_LARGE' } : { delivered: [wide] } }
  })
  const manyItems = fc.tuple(fc.integer({ min: MAX_ITEMS + 1, max: 5_000 }), fc.constantFrom('{}', 'null', '1', '[]', 'signed')).map(([count, kind]): Sized => {
    const entry = kind === 'signed' ? toJson({ callback_id: 1, type: 'account_is_frozen', account_id: 1, hash: sign(1, 1), balance: 1 }) : kind
    const body = `{"callbacks":[${Array.from({ length: count }, () => entry).join(',')}]}`
    return { label: `${count} items (${kind})`, body, outcome: Buffer.byteLength(body) > BODY_LIMIT ? { code: 'PAYLOAD_TOO_LARGE' } : { code: 'BATCH_TOO_LARGE' } }
  })
  const deep = fc.tuple(one, fc.integer({ min: 1, max: 90_000 })).map(([it, depth]): Sized => {
    const body = bodyOf([it]).slice(0, -3) + `,"nested":${'['.repeat(depth)}${']'.repeat(depth)}}]}`
    return { label: `arrays nested ${depth} deep`, body, outcome: Buffer.byteLength(body) > BODY_LIMIT ? { code: 'PAYLOAD_TOO_LARGE' } : { delivered: [it] } }
  })
  await holds(t, 'a large body is a 413, or within the limits delivered whole', fc.asyncProperty(fc.oneof(longString, manyFields, manyItems, deep), async ({ label, body, outcome }) => {
    fuzz.reset()
    const answer = await post(fuzz, body, 'application/json')
    if ('delivered' in outcome) {
      assertSuccess(answer, label)
      const [expected] = outcome.delivered
      assert.equal(fuzz.any.length, 1, label)
      const payload = fuzz.any[0]!.payload as Record<string, unknown>
      if (label.startsWith('arrays')) {
        // Compared by hand: too deep for a recursive comparison.
        const { nested, ...rest } = payload
        assert.deepStrictEqual(rest, expected!.expected, label)
        assert.equal(depthOf(nested), Number(/\d+/.exec(label)![0]), label)
      } else {
        assert.deepStrictEqual(payload, expected!.expected, label)
      }
    } else if ('code' in outcome) {
      assertRefused(fuzz, answer, outcome, label)
    }
    assertPrototypesIntact(prototypes, label)
  }), 40)
})

// ---------------------------------------------------------------------------------------------
// The source address

t.test('with allowedIps, another source is a 403 whatever it sends and whatever it claims in headers', async t => {
  const allowed = '203.0.113.7'
  const fuzz = await fuzzApp({ voximplant: { ...OPTIONS.voximplant, allowedIps: [allowed] } })
  t.teardown(() => fuzz.app.close())
  const prototypes = snapshotPrototypes()
  const spoofing = fc.subarray([['x-forwarded-for', allowed], ['x-real-ip', allowed], ['forwarded', `for=${allowed}`], ['x-client-ip', allowed], ['true-client-ip', allowed]])
  const request = fc.oneof(
    batch.map(items => ({ body: Buffer.from(bodyOf(items)), outcome: { delivered: items } as Outcome })),
    randomBody.map(body => ({ body, outcome: expectedFor(body, 'application/json', true) }))
  )
  await holds(t, 'a request from outside allowedIps is a 403, one from inside gets its own answer', fc.asyncProperty(request, spoofing, fc.boolean(), async ({ body, outcome }, headers, fromAllowed) => {
    fuzz.reset()
    const answer = await fuzz.app.inject({
      method: 'POST',
      url: URL,
      headers: { 'content-type': 'application/json', ...Object.fromEntries(headers) },
      payload: body,
      remoteAddress: fromAllowed ? allowed : '198.51.100.20'
    })
    if (!fromAllowed) {
      assertRefused(fuzz, answer, { code: 'FORBIDDEN_SOURCE' }, 'a forbidden source')
    } else if ('delivered' in outcome) {
      assertSuccess(answer, 'an allowed source')
      assertDelivered(fuzz, outcome.delivered, 'an allowed source')
    } else if ('code' in outcome) {
      assertRefused(fuzz, answer, outcome, 'an allowed source')
    }
    assertPrototypesIntact(prototypes, 'allowedIps')
  }), 100)
})

// ---------------------------------------------------------------------------------------------
// A real socket, where the bytes and the declared length are what the client sends

t.test('over a real socket: raw bytes in and around strings, and lengths over the limit', async t => {
  const fuzz = await fuzzApp(OPTIONS)
  t.teardown(() => fuzz.app.close())
  await fuzz.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = fuzz.app.server.address() as AddressInfo
  const prototypes = snapshotPrototypes()
  const head = (length: number | string, extra: string[] = []): string[] =>
    [`POST ${URL} HTTP/1.1`, 'Host: 127.0.0.1', 'Content-Type: application/json', `Content-Length: ${length}`, ...extra, 'Connection: close']

  await holds(t, 'bytes that are not UTF-8 are U+FFFD inside a string and a 400 outside one', fc.asyncProperty(item.filter(i => i.known), invalidUtf8, fc.boolean(), async (it, bytes, insideString) => {
    fuzz.reset()
    const marker = 'RAW-BYTES-HERE'
    const target = { ...it, wire: { ...it.wire, account_name: `<${marker}>` }, expected: { ...it.expected, account_name: `<${bytes.toString('utf8')}>` } }
    const [before, after] = (insideString ? bodyOf([target]) : bodyOf([target]).replace(`"<${marker}>"`, `"x"${marker}`)).split(marker) as [string, string]
    const body = Buffer.concat([Buffer.from(before), bytes, Buffer.from(after)])
    const answer = await rawExchange(port, requestBytes(head(body.length), body))
    if (insideString) {
      assertSuccess(answer, 'bytes in a string')
      assertDelivered(fuzz, [target], 'bytes in a string')
    } else {
      assertRefused(fuzz, answer, { code: 'MALFORMED_BODY' }, 'bytes between tokens')
    }
    assertPrototypesIntact(prototypes, 'socket')
  }), 40)

  await holds(t, 'a Content-Length over the limit is a 413 before the body is sent', fc.asyncProperty(fc.integer({ min: BODY_LIMIT + 1, max: 2 ** 40 }), async length => {
    fuzz.reset()
    const answer = await rawExchange(port, requestBytes(head(length), Buffer.from('{"callbacks":[')), { holdOpen: true })
    assertRefused(fuzz, answer, { code: 'PAYLOAD_TOO_LARGE' }, `Content-Length: ${length}`)
  }), 20)

  await holds(t, 'a chunked body that grows over the limit is a 413', fc.asyncProperty(fc.integer({ min: 1, max: 64 }), async chunks => {
    fuzz.reset()
    const size = Math.ceil((BODY_LIMIT + 1) / chunks)
    const chunked = (data: Buffer): Buffer => Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')])
    const request = Buffer.concat([
      Buffer.from([`POST ${URL} HTTP/1.1`, 'Host: 127.0.0.1', 'Content-Type: application/json', 'Transfer-Encoding: chunked', 'Connection: close', '', ''].join('\r\n')),
      chunked(Buffer.from('{"callbacks":[]')),
      ...Array.from({ length: chunks }, () => chunked(Buffer.alloc(size, 0x20))),
      Buffer.from('0\r\n\r\n')
    ])
    const answer = await rawExchange(port, request)
    assertRefused(fuzz, answer, { code: 'PAYLOAD_TOO_LARGE' }, `${chunks} chunks`)
  }), 10)
})
