// Property-based fuzzing of POST and GET /callbacks/edis (issue 8), through real requests: valid
// traffic-threshold callbacks in every encoding, method and way of sending the credentials still
// pass, and every mutation of one, every random body, content type, method, source and credential
// is a 4xx in the documented shape, with no event and no polluted prototype. Seeded (FUZZ_SEED) and
// repeatable; see test/fuzz-arbitraries.ts.
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import fc from 'fast-check'
import type { InjectOptions } from 'fastify'
import t from 'tap'
import {
  acceptedContentType, announceSeed, anyString, assertNotEchoed, assertRefused, assertPrototypesIntact, assertSuccess,
  DECIMAL_INTEGER, fuzzApp, holds, HTTP_METHODS, invalidUtf8, onTheWire, pointer, rawExchange, refusedContentType, requestBytes, snapshotPrototypes,
  otherMethodOutcome, type Answer, type ExpectedError, type FuzzApp, type PrototypeSnapshot
} from './fuzz-arbitraries.js'
import { basic, CREDENTIALS, FORM } from './helpers.js'

announceSeed(t)
// 2,620 cases take about 7 s on a quiet 2-core machine; this budget lets them finish with other
// work on the CPU, and still ends a run that hangs.
t.setTimeout(60_000)

const URL = '/callbacks/edis'
/** The default body limit (README: 16384). */
const BODY_LIMIT = 16 * 1024
/** More fields than any EDIS callback has: beyond it a body is refused. */
const MAX_FIELDS = 64
const CREDENTIAL_FIELDS = new Set(['callback_user', 'callback_pw'])
const RESERVED = new Set(['kvm', 'details', 'trigger_value', ...CREDENTIAL_FIELDS])
/** A value no answer may quote back; every hostile case carries it. */
const ECHO = 'ECHO-0e7c1b5d'

// ---------------------------------------------------------------------------------------------
// Encoding fields as EDIS (or anyone) may put them on the wire

/** How one field is written: the form serializer (`+` for spaces), percent-encoding in either hex case, or raw as EDIS's curl sends it. */
type Encoding = 'form' | 'percent' | 'percent-lower' | 'raw'
const ENCODINGS: Encoding[] = ['form', 'percent', 'percent-lower', 'raw']

function encode (text: string, encoding: Encoding, isKey: boolean): string {
  if (encoding === 'raw' && rawIsSafe(text, isKey)) return text
  let out = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte)
    if (encoding !== 'percent' && encoding !== 'percent-lower' && byte === 0x20) out += '+'
    else if (/[A-Za-z0-9*\-._]/.test(c) || (encoding !== 'form' && /[!~'()]/.test(c))) out += c
    else out += '%' + (encoding === 'percent-lower' ? byte.toString(16).padStart(2, '0') : byte.toString(16).padStart(2, '0').toUpperCase())
  }
  return out
}

/** Raw text reads back as itself: no separator, no `+`, no `%XX` (a bare `%`, as in `100%`, is fine). */
function rawIsSafe (text: string, isKey: boolean): boolean {
  return !/[&+#]/.test(text) && !/%[0-9A-Fa-f]{2}/.test(text) && !(isKey && text.includes('='))
}

/** One field as sent: its key and value as meant, or (POST only) raw bytes for the value. */
interface Field {
  key: string
  value: string | Buffer
  encoding: Encoding
}

function fieldBytes ({ key, value, encoding }: Field): Buffer {
  const head = Buffer.from(encode(key, encoding, true) + '=')
  return Buffer.concat([head, typeof value === 'string' ? Buffer.from(encode(value, encoding, false)) : value])
}

function formBody (fields: Field[]): Buffer {
  return Buffer.concat(fields.flatMap((field, i) => i === 0 ? [fieldBytes(field)] : [Buffer.from('&'), fieldBytes(field)]))
}

// ---------------------------------------------------------------------------------------------
// Valid callbacks

/** A trigger_value EDIS may send: a whole percentage (any size the plugin reads exactly), or "demo". */
const triggerValue = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 100 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 999_999_999_999_999 }) },
  { weight: 1, arbitrary: fc.constant('demo' as const) }
)

/** Extra fields EDIS may add: kept as strings. Built-in names and `__proto__` are just names there. */
const extraKey = fc.oneof(
  anyString,
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'then', 'kvm_id', 'callback_method', 'Kvm', 'kvm ', '')
).filter(key => !RESERVED.has(onTheWire(key)))

type Credentials = { how: 'basic', header: string } | { how: 'fields', user: string, password: string } | { how: 'none' }

interface Call {
  /** POST or GET, or a method without a route. */
  method: string
  fields: Field[]
  contentType?: string | undefined
  authorization?: string | undefined
  /** What a GET may carry as a body: ignored. */
  junkBody?: string | undefined
}

interface ValidCall {
  call: Call
  /** The traffic-threshold payload handlers must get. */
  payload: Record<string, unknown>
  guarded: boolean
}

const basicHeader = fc.tuple(fc.constantFrom('Basic', 'basic', 'BASIC', 'bAsIc'), fc.constantFrom(' ', '  ', '\t', ' \t'), fc.constantFrom('', ' ', '\t'))
  .map(([scheme, space, trailing]) => `${scheme}${space}${basic(CREDENTIALS.username, CREDENTIALS.password).slice('Basic '.length)}${trailing}`)

const credentialsFor = (guarded: boolean): fc.Arbitrary<Credentials> => guarded
  ? fc.oneof(
    basicHeader.map((header): Credentials => ({ how: 'basic', header })),
    fc.constant<Credentials>({ how: 'fields', user: CREDENTIALS.username, password: CREDENTIALS.password })
  )
  // Without configured credentials, credential fields are still taken out of the payload.
  : fc.oneof(fc.constant<Credentials>({ how: 'none' }), fc.tuple(anyString, anyString).map(([user, password]): Credentials => ({ how: 'fields', user, password })))

const junkHeader = fc.option(fc.oneof(acceptedContentType([FORM]), refusedContentType([FORM])), { nil: undefined })

function validCall (guarded: boolean): fc.Arbitrary<ValidCall> {
  return fc.record({
    kvm: anyString.filter(kvm => onTheWire(kvm) !== ''),
    details: fc.option(anyString, { nil: undefined }),
    detailsBytes: fc.option(fc.tuple(fc.stringMatching(/^[a-z ]{0,8}$/), invalidUtf8, fc.stringMatching(/^[a-z ]{0,8}$/)), { nil: undefined }),
    trigger: triggerValue,
    extras: fc.uniqueArray(fc.tuple(extraKey, anyString), { maxLength: 5, selector: ([key]) => onTheWire(key) }),
    credentials: credentialsFor(guarded),
    method: fc.oneof({ weight: 3, arbitrary: fc.constant('POST' as const) }, { weight: 1, arbitrary: fc.constant('GET' as const) }),
    encodings: fc.array(fc.constantFrom(...ENCODINGS), { minLength: 12, maxLength: 12 }),
    order: fc.array(fc.nat(), { minLength: 12, maxLength: 12 }),
    contentType: acceptedContentType([FORM]),
    getHeader: junkHeader,
    junkBody: fc.option(anyString, { nil: undefined })
  }).map(({ kvm, details, detailsBytes, trigger, extras, credentials, method, encodings, order, contentType, getHeader, junkBody }): ValidCall => {
    const meant: Array<[string, string | Buffer]> = [['kvm', kvm], ['trigger_value', String(trigger)]]
    const payload: Array<[string, unknown]> = [['kvm', onTheWire(kvm)], ['trigger_value', trigger]]
    if (detailsBytes !== undefined && method === 'POST') {
      // Bytes that are not UTF-8 in a value are read as U+FFFD, as everywhere in Node.
      const bytes = Buffer.concat([Buffer.from(detailsBytes[0]), detailsBytes[1], Buffer.from(detailsBytes[2])])
      meant.push(['details', bytes])
      payload.push(['details', bytes.toString('utf8')])
    } else if (details !== undefined) {
      meant.push(['details', details])
      payload.push(['details', onTheWire(details)])
    }
    for (const [key, value] of extras) {
      meant.push([key, value])
      payload.push([onTheWire(key), onTheWire(value)])
    }
    if (credentials.how === 'fields') meant.push(['callback_user', credentials.user], ['callback_pw', credentials.password])
    const fields = meant
      .map(([key, value], i): Field & { rank: number } => ({ key, value, encoding: encodings[i % encodings.length]!, rank: order[i % order.length]! }))
      .sort((a, b) => a.rank - b.rank)
      .map(({ key, value, encoding }) => ({ key, value, encoding: method === 'GET' && encoding === 'raw' ? 'form' : encoding }))
    const call: Call = method === 'POST'
      ? { method, fields, contentType }
      : { method, fields, contentType: getHeader, junkBody }
    if (credentials.how === 'basic') call.authorization = credentials.header
    // Object.fromEntries: a `__proto__` field is an own property, as the plugin's payload has it.
    return { call, payload: Object.fromEntries(payload), guarded }
  })
}

async function send (app: FuzzApp, call: Call): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (call.contentType !== undefined) headers['content-type'] = call.contentType
  if (call.authorization !== undefined) headers.authorization = call.authorization
  const body = formBody(call.fields)
  const request: InjectOptions = call.method === 'GET' || call.method === 'HEAD'
    ? { method: call.method, url: `${URL}?${body.toString('latin1')}`, headers, ...(call.junkBody === undefined ? {} : { payload: call.junkBody }) }
    : { method: call.method as 'POST', url: URL, headers, payload: body }
  return await app.app.inject(request)
}

function assertTrafficEvent (fuzz: FuzzApp, payload: Record<string, unknown>, context: string): void {
  assert.equal(fuzz.any.length, 1, `${context}: one event`)
  const event = fuzz.any[0]!
  assert.equal(event.name, 'traffic-threshold', context)
  assert.equal(event.provider, 'edis', context)
  assert.equal(event.id, `edis:${String(payload.kvm)}:${String(payload.trigger_value)}`, context)
  assert.ok(event.receivedAt instanceof Date, context)
  assert.deepStrictEqual(event.payload, payload, `${context}: the payload`)
  assert.equal(Object.getPrototypeOf(event.payload), Object.prototype, `${context}: a plain object, whatever its field names`)
  assert.deepEqual(fuzz.named.map(n => n.handler), ['traffic-threshold'], `${context}: the traffic-threshold handler ran, and only it`)
  assert.equal(fuzz.named[0]!.event, event, context)
}

async function twoApps (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ open: FuzzApp, guarded: FuzzApp }> {
  const open = await fuzzApp({ edis: {} })
  const guarded = await fuzzApp({ edis: { credentials: CREDENTIALS } })
  t.teardown(async () => {
    await open.app.close()
    await guarded.app.close()
  })
  return { open, guarded }
}

t.test('valid callbacks pass in every encoding, method, content type and way of sending the credentials', async t => {
  const { open, guarded } = await twoApps(t)
  const prototypes = snapshotPrototypes()
  const calls = fc.oneof(validCall(false), validCall(true))
  await holds(t, 'a valid callback is a 200 and one traffic-threshold event with the fields as sent', fc.asyncProperty(calls, async ({ call, payload, guarded: isGuarded }) => {
    const fuzz = isGuarded ? guarded : open
    fuzz.reset()
    const answer = await send(fuzz, call)
    assertSuccess(answer, 'a valid callback')
    assertTrafficEvent(fuzz, payload, 'a valid callback')
    assertPrototypesIntact(prototypes, 'a valid callback')
  }), 500)
})

// ---------------------------------------------------------------------------------------------
// Mutations of a valid callback

type Outcome = ExpectedError | { payload: Record<string, unknown> } | { noRoute: string }

interface Mutant {
  label: string
  call: Call
  outcome: Outcome
}

const BAD_TRIGGERS = [
  '-1', '-0.5', '1.5', '80.0', '080', '00', '1e2', '0x50', ' 80', '80 ', '+80', '', 'DEMO', 'Demo', 'demo ', ' demo', 'demo\u0000',
  '1234567890123456', '99999999999999999999', '８０', '٨٠', 'NaN', 'Infinity', 'null', 'true', '[80]', '80%', '80,5', '8_0'
]
const validTrigger = (text: string): boolean => text === 'demo' || (DECIMAL_INTEGER.test(text) && Number(text) >= 0)
const badTrigger = fc.oneof(fc.constantFrom(...BAD_TRIGGERS), anyString).filter(text => !validTrigger(onTheWire(text)))

function replaceField (fields: Field[], key: string, value: string | undefined): Field[] {
  return fields.flatMap(f => f.key !== key ? [f] : value === undefined ? [] : [{ ...f, value }])
}

function mutants ({ call, guarded }: ValidCall): fc.Arbitrary<Mutant> {
  const { fields } = call
  const byFields = call.fields.some(f => CREDENTIAL_FIELDS.has(f.key)) && guarded
  const post = call.method === 'POST'
  const at = fc.nat({ max: fields.length })
  const insert = (list: Field[], i: number, field: Field): Field[] => [...list.slice(0, i), field, ...list.slice(i)]
  const encoding = fc.constantFrom<Encoding>('form', 'percent', 'percent-lower')

  const missing = fc.constantFrom('kvm', 'trigger_value').map((key): Mutant => ({
    label: `no ${key}`, call: { ...call, fields: replaceField(fields, key, undefined) }, outcome: { code: 'INVALID_PAYLOAD', path: `/${key}` }
  }))
  const emptyKvm: fc.Arbitrary<Mutant> = fc.constant({ label: 'an empty kvm', call: { ...call, fields: replaceField(fields, 'kvm', '') }, outcome: { code: 'INVALID_PAYLOAD', path: '/kvm' } })
  const wrongTrigger = badTrigger.map((text): Mutant => ({
    label: `trigger_value ${JSON.stringify(text)}`, call: { ...call, fields: replaceField(fields, 'trigger_value', text) }, outcome: { code: 'INVALID_PAYLOAD', path: '/trigger_value' }
  }))
  // A field given twice: nobody can tell which value was meant. With credentials sent as fields, a
  // repeated credential is no credential.
  const repeated = fc.tuple(fc.constantFrom(...fields.filter(f => typeof f.value === 'string')), fc.option(anyString, { nil: undefined }), at, encoding).map(([field, other, i, enc]): Mutant => {
    const twice = insert(fields, i, { key: field.key, value: other ?? field.value, encoding: enc })
    const credential = CREDENTIAL_FIELDS.has(field.key)
    if (credential && byFields) return { label: `${field.key} twice`, call: { ...call, fields: twice }, outcome: { code: 'UNAUTHORIZED' } }
    return { label: `${JSON.stringify(field.key)} twice`, call: { ...call, fields: twice }, outcome: { code: 'REPEATED_FIELD', path: pointer([onTheWire(field.key)]) } }
  })
  const tooMany = fc.integer({ min: MAX_FIELDS + 1 - fields.length, max: 3000 }).map((count): Mutant => {
    const many = [...fields, ...Array.from({ length: count }, (_, i): Field => ({ key: `f${i}`, value: 'x', encoding: 'form' }))]
    const next = { ...call, fields: many }
    const tooLarge = post && formBody(many).length > BODY_LIMIT
    return { label: `${many.length} fields`, call: next, outcome: tooLarge ? { code: 'PAYLOAD_TOO_LARGE' } : { code: 'INVALID_PAYLOAD', path: '' } }
  })
  const otherMethod = fc.constantFrom(...HTTP_METHODS.filter(m => m !== 'POST' && m !== 'GET')).map((method): Mutant => ({
    label: method, call: { ...call, method, contentType: call.contentType ?? FORM }, outcome: otherMethodOutcome(method, 'GET, POST')
  }))
  const options: Array<fc.Arbitrary<Mutant>> = [missing, emptyKvm, wrongTrigger, repeated, tooMany, otherMethod]
  if (post) {
    options.push(
      refusedContentType([FORM]).map((contentType): Mutant => ({ label: `content type ${JSON.stringify(contentType)}`, call: { ...call, contentType }, outcome: { code: 'UNSUPPORTED_MEDIA_TYPE' } })),
      fc.constant<Mutant>({ label: 'no content type', call: { ...call, contentType: undefined }, outcome: { code: 'UNSUPPORTED_MEDIA_TYPE' } })
    )
  }
  return fc.oneof(...options)
}

function withEcho (valid: ValidCall): ValidCall {
  const { call, payload } = valid
  const fields = [...call.fields.filter(f => f.key !== 'details'), { key: 'details', value: ECHO, encoding: 'form' as const }]
  return { ...valid, call: { ...call, fields }, payload: { ...payload, details: ECHO } }
}

async function check (fuzz: FuzzApp, { label, call, outcome }: Mutant, prototypes: PrototypeSnapshot): Promise<void> {
  fuzz.reset()
  const answer = await send(fuzz, call)
  if ('payload' in outcome) {
    assertSuccess(answer, label)
    assertTrafficEvent(fuzz, outcome.payload, label)
  } else {
    assertRefused(fuzz, answer, outcome, label)
    assertNotEchoed(answer, ECHO, label)
  }
  assertPrototypesIntact(prototypes, label)
}

t.test('every mutation of a valid callback is refused as documented, with nothing emitted', async t => {
  const { open, guarded } = await twoApps(t)
  const prototypes = snapshotPrototypes()
  const mutated = fc.oneof(validCall(false), validCall(true)).map(withEcho).chain(valid => mutants(valid).map(mutant => ({ mutant, guarded: valid.guarded })))
  await holds(t, 'a mutated callback gets the answer its mutation calls for', fc.asyncProperty(mutated, async ({ mutant, guarded: isGuarded }) => {
    await check(isGuarded ? guarded : open, mutant, prototypes)
  }), 900)
})

// ---------------------------------------------------------------------------------------------
// Credentials

/** Whether a Basic header of `user` and `password` carries the configured pair (the first colon splits them). */
const isGenuine = (user: string, password: string): boolean => onTheWire(`${user}:${password}`) === `${CREDENTIALS.username}:${CREDENTIALS.password}`

const wrongText = (genuine: string): fc.Arbitrary<string> => fc.oneof(
  anyString,
  fc.constantFrom(genuine.toUpperCase(), genuine + ' ', ' ' + genuine, genuine + '\u0000', genuine.slice(0, -1), genuine + genuine, '', genuine.normalize('NFKC') + '\u200b')
).filter(text => onTheWire(text) !== genuine)

/** An Authorization header that does not carry the configured credentials. */
const wrongBasic = fc.oneof(
  fc.tuple(wrongText(CREDENTIALS.username), fc.constant(CREDENTIALS.password)),
  fc.tuple(fc.constant(CREDENTIALS.username), wrongText(CREDENTIALS.password)),
  fc.tuple(anyString, anyString)
).filter(([user, password]) => !isGenuine(user, password)).map(([user, password]) => basic(user, password))

const wrongAuthorization = fc.oneof(
  wrongBasic,
  fc.constantFrom(
    'Basic', 'Basic ', 'Basic !!!!', 'Basic ====', `Basic ${Buffer.from(CREDENTIALS.username + CREDENTIALS.password).toString('base64')}`,
    `Bearer ${Buffer.from(`${CREDENTIALS.username}:${CREDENTIALS.password}`).toString('base64')}`, `Digest username="${CREDENTIALS.username}"`,
    `${basic(CREDENTIALS.username, CREDENTIALS.password)},${basic('a', 'b')}`, `Basic${basic(CREDENTIALS.username, CREDENTIALS.password).slice(6)}`, '', ' '
  ),
  fc.string({ maxLength: 40 }).map(text => text.replace(/[^\x20-\x7e]/g, ''))
)

t.test('wrong, missing or malformed credentials are a 401 whatever else the request holds', async t => {
  const { guarded } = await twoApps(t)
  const prototypes = snapshotPrototypes()
  const withoutCredentials = validCall(true).map(({ call }): Call => ({ ...call, fields: call.fields.filter(f => !CREDENTIAL_FIELDS.has(f.key)), authorization: undefined }))
  const cases = fc.oneof(
    // No Authorization header, and the fields wrong, partial, or absent; the body empty or missing too.
    fc.tuple(withoutCredentials, fc.oneof(
      fc.tuple(wrongText(CREDENTIALS.username), fc.constant(CREDENTIALS.password)),
      fc.tuple(fc.constant(CREDENTIALS.username), wrongText(CREDENTIALS.password)),
      fc.tuple(fc.constant(undefined), fc.constant(CREDENTIALS.password)),
      fc.tuple(fc.constant(CREDENTIALS.username), fc.constant(undefined)),
      fc.constant([undefined, undefined] as const)
    ), fc.constantFrom('as sent', 'no fields')).map(([call, [user, password], body]): { label: string, call: Call } => {
      const fields = [...call.fields]
      if (user !== undefined) fields.push({ key: 'callback_user', value: user, encoding: 'form' })
      if (password !== undefined) fields.push({ key: 'callback_pw', value: password, encoding: 'form' })
      const label = `fields ${JSON.stringify([user, password])}, ${body}, ${call.method}`
      return { label, call: { ...call, fields: body === 'as sent' ? fields : [] } }
    }),
    // A wrong Authorization header is refused before the body is read: whatever the body, its size, its type.
    fc.tuple(validCall(true), wrongAuthorization, fc.option(fc.oneof(refusedContentType([FORM]), fc.constant(FORM)), { nil: undefined }), fc.integer({ min: 0, max: 3 * BODY_LIMIT }))
      .map(([{ call }, authorization, contentType, padding]) => {
        const fields = padding > 0 ? [...call.fields, { key: 'padding', value: 'x'.repeat(padding), encoding: 'form' as const }] : call.fields
        return { label: `Authorization ${JSON.stringify(authorization)}`, call: { ...call, fields, authorization, ...(contentType === undefined ? {} : { contentType }) } }
      })
  )
  await holds(t, 'a request without the configured credentials is a 401', fc.asyncProperty(cases, async ({ label, call }) => {
    guarded.reset()
    const answer = await send(guarded, call)
    assertRefused(guarded, answer, { code: 'UNAUTHORIZED' }, label)
    assertPrototypesIntact(prototypes, label)
  }), 500)
})

t.test('a request with no body and no credentials is a 401, not a 400', async t => {
  const { guarded } = await twoApps(t)
  // README: "the credentials (401), then the body (413, 415, 400)". With nothing sent at all there
  // are no credentials to find, in the header or in fields.
  const bare = fc.tuple(fc.constantFrom('POST', 'GET'), fc.subarray([['user-agent', 'EDIS'], ['accept', '*/*'], ['x-forwarded-for', '149.154.154.251']]))
  await holds(t, 'an empty request to a route with credentials is a 401', fc.asyncProperty(bare, async ([method, headers]) => {
    guarded.reset()
    const answer = await guarded.app.inject({ method: method as 'POST', url: URL, headers: Object.fromEntries(headers) })
    assertRefused(guarded, answer, { code: 'UNAUTHORIZED' }, `${method} with no body, no Content-Type, no credentials`)
  }), 20)
})

// ---------------------------------------------------------------------------------------------
// Random bodies and queries

/** The README's order for a body without credentials configured: type (415), size (413), form (400), fields (400). */
function expectedFor (body: Buffer, contentType: string | undefined, accepted: boolean, method: 'POST' | 'GET'): Outcome {
  if (method === 'POST') {
    if (contentType === undefined && body.length === 0) return { code: 'INVALID_PAYLOAD', path: '' }
    if (!accepted) return { code: 'UNSUPPORTED_MEDIA_TYPE' }
    if (body.length > BODY_LIMIT) return { code: 'PAYLOAD_TOO_LARGE' }
  }
  const entries = [...new URLSearchParams(body.toString('utf8'))]
  if (entries.length > MAX_FIELDS) return { code: 'INVALID_PAYLOAD', path: '' }
  const seen = new Set<string>()
  for (const [key] of entries) {
    if (seen.has(key)) return { code: 'REPEATED_FIELD', path: pointer([key]) }
    seen.add(key)
  }
  const fields = Object.fromEntries(entries) as Record<string, string>
  if (!Object.hasOwn(fields, 'kvm') || fields.kvm === '') return { code: 'INVALID_PAYLOAD', path: '/kvm' }
  if (!Object.hasOwn(fields, 'trigger_value') || !validTrigger(fields.trigger_value!)) return { code: 'INVALID_PAYLOAD', path: '/trigger_value' }
  const payload = Object.fromEntries(entries.filter(([key]) => !CREDENTIAL_FIELDS.has(key)).map(([key, value]) => [key, key === 'trigger_value' && value !== 'demo' ? Number(value) : value]))
  return { payload }
}

const formish = fc.array(fc.tuple(
  fc.oneof(fc.constantFrom('kvm', 'trigger_value', 'details', 'callback_user', 'callback_pw', '__proto__', 'constructor', 'kvm%00', 'trigger_value '), anyString),
  fc.oneof(fc.constantFrom('kvm_1', '80', '0', 'demo', '100', '-1', ''), anyString),
  fc.constantFrom<Encoding>(...ENCODINGS)
), { maxLength: 8 }).map(pairs => formBody(pairs.map(([key, value, encoding]) => ({ key, value, encoding }))))

const randomBody: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map(bytes => Buffer.from(bytes)),
  anyString.map(text => Buffer.from(text)),
  fc.string({ unit: fc.constantFrom('&', '=', '+', '%', 'k', 'v', 'm', '_', 'trigger_value', 'kvm', '80', 'demo', '%2', '%26', '%3D', ' '), maxLength: 30 }).map(text => Buffer.from(text)),
  formish,
  fc.jsonValue({ maxDepth: 2 }).map(value => Buffer.from(JSON.stringify(value)))
)

// What survives in a URL's query as written (WHATWG URL drops tabs and newlines, cuts at '#', trims the ends).
const randomQuery: fc.Arbitrary<Buffer> = fc.oneof(
  formish,
  fc.string({ unit: fc.constantFrom('&', '=', '+', '%', 'k', 'v', 'm', '_', 'trigger_value', 'kvm', '80', 'demo', '%2', '%26', '%3D', '%00', '%FF', 'é', '"', '\'', '<'), maxLength: 30 }).map(text => Buffer.from(text))
).filter(bytes => {
  const text = bytes.toString('utf8')
  const edge = (c: string | undefined): boolean => c !== undefined && c.charCodeAt(0) <= 0x20
  return !/[\t\n\r#]/.test(text) && !edge(text[0]) && !edge(text[text.length - 1])
})

t.test('random bodies and queries get the README\'s answer for what they are', async t => {
  const { open } = await twoApps(t)
  const prototypes = snapshotPrototypes()
  const contentTypeCase = fc.oneof(
    { weight: 4, arbitrary: acceptedContentType([FORM]).map(contentType => ({ contentType: contentType as string | undefined, accepted: true })) },
    { weight: 1, arbitrary: refusedContentType([FORM]).map(contentType => ({ contentType: contentType as string | undefined, accepted: false })) },
    { weight: 1, arbitrary: fc.constant({ contentType: undefined, accepted: false }) }
  )
  const request = fc.oneof(
    fc.tuple(randomBody, contentTypeCase).map(([body, { contentType, accepted }]) => ({ method: 'POST' as const, body, contentType, accepted })),
    fc.tuple(randomQuery, fc.option(refusedContentType([FORM]), { nil: undefined })).map(([body, contentType]) => ({ method: 'GET' as const, body, contentType, accepted: true }))
  )
  await holds(t, 'a random request is refused, or delivered when it happens to be a valid callback', fc.asyncProperty(request, async ({ method, body, contentType, accepted }) => {
    open.reset()
    const outcome = expectedFor(body, contentType, accepted, method)
    const label = `${method} ${JSON.stringify(contentType)} ${JSON.stringify(body.toString('utf8').slice(0, 80))}`
    const headers: Record<string, string> = contentType === undefined ? {} : { 'content-type': contentType }
    const answer = await open.app.inject(method === 'POST'
      ? { method, url: URL, headers, payload: body }
      : { method, url: `${URL}?${body.toString('utf8')}`, headers })
    if ('payload' in outcome) {
      assertSuccess(answer, label)
      assertTrafficEvent(open, outcome.payload, label)
    } else if ('code' in outcome) {
      assertRefused(open, answer, outcome, label)
    }
    assertPrototypesIntact(prototypes, label)
  }), 500)
})

// ---------------------------------------------------------------------------------------------
// Bounds

t.test('long values and thousands of fields stay within the bounds', async t => {
  const { open } = await twoApps(t)
  const prototypes = snapshotPrototypes()
  const sized = fc.tuple(validCall(false), fc.oneof(fc.integer({ min: BODY_LIMIT - 600, max: BODY_LIMIT + 600 }), fc.integer({ min: 1_000, max: 100_000 })), fc.constantFrom('x', 'é', '%', ' ', '\u0000'))
    .map(([{ call, payload }, length, unit]): Mutant => {
      const long = unit.repeat(length)
      const fields = [...call.fields.filter(f => f.key !== 'details'), { key: 'details', value: long, encoding: 'percent' as const }]
      const next = { ...call, fields }
      const tooLarge = call.method === 'POST' && formBody(fields).length > BODY_LIMIT
      return { label: `details of ${length} × ${JSON.stringify(unit)} by ${call.method}`, call: next, outcome: tooLarge ? { code: 'PAYLOAD_TOO_LARGE' } : { payload: { ...payload, details: long } } }
    })
  await holds(t, 'a long value is a 413 over the limit (POST), delivered whole under it', fc.asyncProperty(sized, async mutant => {
    await check(open, mutant, prototypes)
  }), 40)
})

// ---------------------------------------------------------------------------------------------
// The source address

t.test('with allowedIps, another source is a 403 whatever it sends and whatever it claims in headers', async t => {
  const allowed = '203.0.113.7'
  const fuzz = await fuzzApp({ edis: { allowedIps: [allowed] } })
  t.teardown(() => fuzz.app.close())
  const prototypes = snapshotPrototypes()
  const spoofing = fc.subarray([['x-forwarded-for', allowed], ['x-real-ip', allowed], ['forwarded', `for=${allowed}`], ['x-client-ip', allowed], ['true-client-ip', allowed]])
  await holds(t, 'a request from outside allowedIps is a 403, one from inside gets its own answer', fc.asyncProperty(validCall(false), spoofing, fc.boolean(), async ({ call, payload }, headers, fromAllowed) => {
    fuzz.reset()
    const body = formBody(call.fields)
    const answer = await fuzz.app.inject({
      method: call.method,
      url: call.method === 'GET' ? `${URL}?${body.toString('latin1')}` : URL,
      headers: { ...(call.contentType === undefined ? {} : { 'content-type': call.contentType }), ...Object.fromEntries(headers) },
      ...(call.method === 'POST' ? { payload: body } : {}),
      remoteAddress: fromAllowed ? allowed : '198.51.100.20'
    })
    if (fromAllowed) {
      assertSuccess(answer, 'an allowed source')
      assertTrafficEvent(fuzz, payload, 'an allowed source')
    } else {
      assertRefused(fuzz, answer, { code: 'FORBIDDEN_SOURCE' }, 'a forbidden source')
    }
    assertPrototypesIntact(prototypes, 'allowedIps')
  }), 100)
})

// ---------------------------------------------------------------------------------------------
// A real socket

t.test('over a real socket: raw bytes in values, and lengths over the limit', async t => {
  const fuzz = await fuzzApp({ edis: {} })
  t.teardown(() => fuzz.app.close())
  await fuzz.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = fuzz.app.server.address() as AddressInfo
  const prototypes = snapshotPrototypes()
  const head = (length: number): string[] =>
    [`POST ${URL} HTTP/1.1`, 'Host: 127.0.0.1', `Content-Type: ${FORM}`, `Content-Length: ${length}`, 'Connection: close']
  const raw = fc.tuple(fc.array(fc.oneof(invalidUtf8, fc.constantFrom(Buffer.from([0]), Buffer.from('\u0000\u0001\u007f'), Buffer.from('é%+ '))), { minLength: 1, maxLength: 3 }), triggerValue)
  await holds(t, 'bytes that are not UTF-8, NUL and control bytes in values are read as Node reads them', fc.asyncProperty(raw, async ([parts, trigger]) => {
    fuzz.reset()
    const value = Buffer.concat(parts)
    const body = Buffer.concat([Buffer.from('kvm=kvm_'), value, Buffer.from('&details='), value, Buffer.from(`&trigger_value=${trigger}`)])
    const answer = await rawExchange(port, requestBytes(head(body.length), body))
    const text = new URLSearchParams(Buffer.concat([Buffer.from('v='), value]).toString('utf8')).get('v')!
    assertSuccess(answer, 'raw bytes')
    assertTrafficEvent(fuzz, { kvm: `kvm_${text}`, details: text, trigger_value: trigger }, 'raw bytes')
    assertPrototypesIntact(prototypes, 'raw bytes')
  }), 40)

  await holds(t, 'a Content-Length over the limit is a 413 before the body is sent', fc.asyncProperty(fc.integer({ min: BODY_LIMIT + 1, max: 2 ** 40 }), async length => {
    fuzz.reset()
    const answer = await rawExchange(port, requestBytes(head(length), Buffer.from('kvm=kvm_1&trigger_value=80&details=')), { holdOpen: true })
    assertRefused(fuzz, answer, { code: 'PAYLOAD_TOO_LARGE' }, `Content-Length: ${length}`)
  }), 20)
})
