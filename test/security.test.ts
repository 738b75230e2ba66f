// What a user relies on when a callback URL is public (issue 8's security pass): credentials and
// hashes compared in constant time whatever their length, bounds enforced before any work, the
// checks in DESIGN.md's order, allowedIps not bypassed through X-Forwarded-For, and no secret in
// logs or answers. What other files already cover is named where it matters and not repeated:
// edis-credentials.test.ts (Basic and field credentials), edis-source.test.ts (allowedIps, a
// spoofed X-Forwarded-For on EDIS without trustProxy and with one trusted proxy), logging.test.ts
// (EDIS at trace level), voximplant.test.ts (forged batches, bounds), voximplant-secrets.test.ts
// (Voximplant with static secrets at trace level).
//
// No statistical timing test: on a shared CI machine, timing differences of a few nanoseconds in a
// comparison drown in scheduling noise, so such a test either proves nothing or fails at random.
// Instead the comparisons themselves are observed: crypto.timingSafeEqual and the hash functions
// are wrapped (module.syncBuiltinESMExports() makes lib/'s named imports see the wrappers), and
// the tests assert that every request compares the same number of digests of the same length,
// whatever was sent and whichever secret matched. Voximplant's hex digests are compared digit by
// digit in lib/voximplant/hash.ts (no Buffers per item), each md5 as soon as it is computed: there
// the md5s counted are the comparisons made.
import crypto from 'node:crypto'
import { syncBuiltinESMExports } from 'node:module'
import { connect, type AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import t, { type Test } from 'tap'
import providerCallbacks, { type ClaimResult, type IdempotencyStore, type ProviderCallbacksOptions, type VoximplantSecret } from '../lib/index.js'
import { voximplantHash } from '../lib/testing.js'
import { appWith, basic, EDIS_BODIES, FORM, postBatch, signedItem, VOX } from './helpers.js'

const UNAUTHORIZED = { status: 'error', message: 'Missing or invalid callback credentials.', code: 'FST_PROVIDER_CALLBACKS_UNAUTHORIZED' }
const FORBIDDEN = { status: 'error', message: 'The request does not come from an allowed address.', code: 'FST_PROVIDER_CALLBACKS_FORBIDDEN_SOURCE' }
const TOO_LARGE = { status: 'error', message: 'The request body is too large.', code: 'FST_PROVIDER_CALLBACKS_PAYLOAD_TOO_LARGE' }

/** The provider's address, a stranger's, and a reverse proxy's. */
const ALLOWED = '149.154.154.251'
const STRANGER = '203.0.113.9'
const PROXY = '10.0.0.1'

// ---------------------------------------------------------------------------------------------
// Watching the comparisons

interface CryptoCalls {
  /** The byte lengths of both sides of every crypto.timingSafeEqual call. */
  compared: Array<[number, number]>
  /** md5 digests computed (createHash('md5') or hash('md5', …)): Voximplant's hash. */
  md5: number
}

type Patchable = { -readonly [K in 'timingSafeEqual' | 'createHash' | 'hash']: typeof crypto[K] }

/** Wraps crypto's comparison and hash functions for the rest of the test `t`, counting their calls. */
function watchCrypto (t: Test): CryptoCalls {
  const calls: CryptoCalls = { compared: [], md5: 0 }
  const target: Patchable = crypto
  const original = { timingSafeEqual: target.timingSafeEqual, createHash: target.createHash, hash: target.hash }
  const countMd5 = (algorithm: unknown): void => { if (String(algorithm).toLowerCase() === 'md5') calls.md5++ }
  target.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    calls.compared.push([a.byteLength, b.byteLength])
    return original.timingSafeEqual(a, b)
  }) as typeof crypto.timingSafeEqual
  target.createHash = ((algorithm: string, ...rest: unknown[]) => {
    countMd5(algorithm)
    return (original.createHash as (...args: unknown[]) => crypto.Hash)(algorithm, ...rest)
  }) as typeof crypto.createHash
  // crypto.hash (the one-shot digest) is in Node >= 20.12.
  if (typeof original.hash === 'function') {
    target.hash = ((algorithm: string, ...rest: unknown[]) => {
      countMd5(algorithm)
      return (original.hash as (...args: unknown[]) => unknown)(algorithm, ...rest)
    }) as typeof crypto.hash
  }
  syncBuiltinESMExports()
  t.teardown(() => {
    Object.assign(target, original)
    syncBuiltinESMExports()
  })
  return calls
}

/** Runs `request` and returns the crypto calls it made, along with its answer. */
async function measured<R> (calls: CryptoCalls, request: () => Promise<R>): Promise<{ result: R, compared: Array<[number, number]>, md5: number }> {
  calls.compared = []
  calls.md5 = 0
  const result = await request()
  return { result, compared: calls.compared, md5: calls.md5 }
}

// ---------------------------------------------------------------------------------------------
// Constant-time comparisons, lengths included

t.test('EDIS credentials of any length or encoding are a 401, the right ones a 200, and every check compares the same fixed-length digests', async t => {
  const calls = watchCrypto(t)
  // Non-ASCII on purpose: 'ä' and 'ö' precomposed (NFC), a check mark, a space and a colon.
  const first = { username: 'hook', password: 'p\u00e4ssw\u00f6rd \u2713:colon' }
  const second = { username: 'hook-2', password: 'second-password' }
  const { app, events } = await appWith({ edis: { credentials: [first, second] } })
  t.teardown(() => app.close())
  const viaBasic = (authorization: string) => app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, authorization }, payload: EDIS_BODIES.canonical })
  const viaFields = (username: string, password: string) => app.inject({
    method: 'POST',
    url: '/callbacks/edis',
    headers: { 'content-type': FORM },
    payload: `${EDIS_BODIES.canonical}&${new URLSearchParams({ callback_user: username, callback_pw: password })}`
  })

  const { username, password } = first
  const wrong: Array<[string, string, string]> = [
    ['an empty password', username, ''],
    ['an empty username and password', '', ''],
    ['a one-character password', username, 'p'],
    ['a 10,000-character password', username, 'x'.repeat(10_000)],
    ['a 10,000-character password that starts with the right one', username, password + 'x'.repeat(10_000 - password.length)],
    ['the password less its last character', username, password.slice(0, -1)],
    ['the password less its first character', username, password.slice(1)],
    ['the password plus one character', username, password + 'x'],
    ['the password with a NUL after it', username, password + '\0'],
    ['the password decomposed (NFD): the same text, other bytes', username, password.normalize('NFD')],
    ['the password with its non-ASCII characters dropped', username, password.replace(/[^\x20-\x7e]/g, '')],
    ['the password upper-cased', username, password.toUpperCase()],
    ['the other pair\'s password', username, second.password],
    ['a one-character username', 'h', password],
    ['a 10,000-character username', 'hook'.repeat(2500), password],
    ['the username plus a space', username + ' ', password]
  ]
  const outcomes: Array<{ name: string, status: number, compared: Array<[number, number]> }> = []
  for (const [name, user, pw] of wrong) {
    for (const [how, send] of [['Basic', () => viaBasic(basic(user, pw))], ['fields', () => viaFields(user, pw)]] as const) {
      const { result: res, compared } = await measured(calls, send)
      outcomes.push({ name: `${how}: ${name}`, status: res.statusCode, compared })
      t.equal(res.statusCode, 401, `${how}: ${name}`)
      t.same(res.json(), UNAUTHORIZED, `${how}: ${name}`)
    }
  }
  // A Basic header in Latin-1 rather than UTF-8 is other bytes, so other credentials.
  const latin1 = await measured(calls, () => viaBasic('Basic ' + Buffer.from(`${username}:${password.replace('\u2713', '')}`, 'latin1').toString('base64')))
  t.equal(latin1.result.statusCode, 401, 'Basic: the password encoded in Latin-1')
  outcomes.push({ name: 'Basic: Latin-1', status: latin1.result.statusCode, compared: latin1.compared })

  for (const pair of [first, second]) {
    for (const [how, send] of [['Basic', () => viaBasic(basic(pair.username, pair.password))], ['fields', () => viaFields(pair.username, pair.password)]] as const) {
      const { result: res, compared } = await measured(calls, send)
      t.equal(res.statusCode, 200, `${how}: ${pair.username}'s right credentials`)
      outcomes.push({ name: `${how}: ${pair.username} right`, status: res.statusCode, compared })
    }
  }
  t.equal(events.length, 4, 'only the right credentials delivered events')

  // Every check, right or wrong, short or long, first pair or second: both halves of both pairs
  // compared, as SHA-256 digests of 32 bytes, so neither the time nor an early exit tells anything.
  for (const { name, compared } of outcomes) {
    t.same(compared, [[32, 32], [32, 32], [32, 32], [32, 32]], `${name}: 4 comparisons of 32-byte digests`)
  }
})

t.test('Voximplant hashes of any length or form: only the 32-hex-digit md5 (either case) passes, the rest is a 401, never a 5xx', async t => {
  const calls = watchCrypto(t)
  // Three secrets during a rotation: a hash may match the first, the second, the last or none.
  const secrets = [{ apiKey: 'key-one', salt: 'salt-one' }, { apiKey: VOX.apiKey, salt: VOX.salt }, { apiKey: 'key-three' }]
  const { app, events } = await appWith({ voximplant: { secret: secrets } })
  t.teardown(() => app.close())
  const item = signedItem('min_balance', 1, {}, secrets[1])
  const valid = item.hash as string
  const other = voximplantHash({ accountId: VOX.accountId, apiKey: 'not-configured', callbackId: 1 })
  const digest = Buffer.from(valid, 'hex')

  const refused: Array<[string, unknown]> = [
    ['31 hex digits', valid.slice(0, 31)],
    ['33 hex digits: the valid hash plus a 0', valid + '0'],
    ['33 hex digits: the valid hash plus an f', valid + 'f'],
    ['64 hex digits: the valid hash twice', valid + valid],
    ['64 hex digits: a SHA-256', crypto.createHash('sha256').update('x').digest('hex')],
    ['40 hex digits: a SHA-1', crypto.createHash('sha1').update('x').digest('hex')],
    ['empty', ''],
    ['32 non-hex characters', 'g'.repeat(32)],
    ['the valid hash with its last digit not hex', valid.slice(0, 31) + 'z'],
    ['the valid hash with a leading space', ' ' + valid],
    ['the valid hash with a trailing newline', valid + '\n'],
    ['the valid hash with a full-width digit', valid.slice(0, 31) + '\uff10'],
    ['0x and 30 digits', '0x' + valid.slice(2)],
    ['the digest in base64', digest.toString('base64')],
    ['the digest as raw bytes', digest.toString('latin1')],
    ['the hash of a secret not configured', other],
    ['the API key itself', VOX.apiKey],
    ['a number', 1234],
    ['null', null],
    ['true', true],
    ['an array holding the valid hash', [valid]],
    ['an object holding the valid hash', { hash: valid }]
  ]
  for (const [name, hash] of refused) {
    const { result: res, md5 } = await measured(calls, () => postBatch(app, [{ ...item, hash }]))
    t.equal(res.statusCode, 401, name)
    t.same(res.json(), UNAUTHORIZED, name)
    const wellFormed = typeof hash === 'string' && /^[0-9a-fA-F]{32}$/.test(hash)
    // A hash that is not 32 hex digits is refused on its form alone, which everyone knows; one that
    // is gets the same comparisons as a valid one.
    t.equal(md5, wellFormed ? 3 : 0, `${name}: ${wellFormed ? 'every secret compared' : 'nothing compared'}`)
  }
  t.equal(events.length, 0)

  const accepted: Array<[string, Record<string, unknown>]> = [
    ['lower case, the first secret', signedItem('min_balance', 2, {}, secrets[0])],
    ['lower case, the second secret', item],
    ['lower case, the last secret', signedItem('min_balance', 3, {}, secrets[2])],
    ['upper case', { ...item, hash: valid.toUpperCase() }],
    ['mixed case', { ...item, hash: [...valid].map((c, i) => i % 2 === 0 ? c.toUpperCase() : c).join('') }]
  ]
  for (const [name, signed] of accepted) {
    const { result: res, md5 } = await measured(calls, () => postBatch(app, [signed]))
    t.equal(res.statusCode, 200, name)
    t.equal(md5, 3, `${name}: every secret compared, whichever matched`)
  }
  t.equal(events.length, accepted.length)
  const pair = [signedItem('min_balance', 4, {}, secrets[0]), signedItem('card_payment', 5, {}, secrets[2])]
  const two = await measured(calls, () => postBatch(app, pair))
  t.equal(two.result.statusCode, 200)
  t.equal(two.md5, 6, 'each item of a batch against every secret')
})

// ---------------------------------------------------------------------------------------------
// Bounds before work

t.test('a batch over maxItems is a 413 before any secret is looked up or any hash computed', async t => {
  const calls = watchCrypto(t)
  const lookups: number[] = []
  const getSecret = async (accountId: number): Promise<VoximplantSecret> => {
    lookups.push(accountId)
    return VOX
  }
  const { app, events } = await appWith({ voximplant: { getSecret, maxItems: 5 } })
  t.teardown(() => app.close())
  // Six genuine items, each of its own account: checking them would take six look-ups.
  const items = Array.from({ length: 6 }, (_, i) => signedItem('min_balance', i, {}, VOX, 1000 + i))
  const batches: Array<[string, unknown[]]> = [
    ['six signed items', items],
    ['six items that are not even objects', [1, 'two', null, [], true, 6]],
    ['ten thousand empty items', Array.from({ length: 10_000 }, () => ({}))]
  ]
  for (const [name, callbacks] of batches) {
    const { result: res, md5 } = await measured(calls, () => postBatch(app, callbacks))
    t.equal(res.statusCode, 413, name)
    t.same(res.json(), { status: 'error', message: 'The batch has more callbacks than the 5 this route accepts.', code: 'FST_PROVIDER_CALLBACKS_BATCH_TOO_LARGE' }, name)
    t.same({ lookups: lookups.length, md5 }, { lookups: 0, md5: 0 }, `${name}: no secret looked up, no hash computed or compared`)
  }
  t.equal(events.length, 0)

  // The same items within the bound are checked: the counters above can count.
  const { result: within, md5 } = await measured(calls, () => postBatch(app, items.slice(0, 5)))
  t.equal(within.statusCode, 200)
  t.same({ lookups: lookups.length, md5 }, { lookups: 5, md5: 5 })
})

t.test('a forged batch costs one secret look-up, however many accounts it names', async t => {
  const lookups: number[] = []
  const { app, events } = await appWith({ voximplant: { getSecret: async accountId => { lookups.push(accountId); return VOX } } })
  t.teardown(() => app.close())
  // A thousand items (the default maxItems), each of another account, none signed.
  const forged = Array.from({ length: 1000 }, (_, i) => ({ ...signedItem('min_balance', i, {}, VOX, 5000 + i), hash: 'f'.repeat(32) }))
  const res = await postBatch(app, forged)
  t.equal(res.statusCode, 401)
  t.same(lookups, [5000], 'the first account\'s look-up finds the forgery; the other 999 are not looked up')
  // A genuine item first only moves the forgery one account on.
  lookups.length = 0
  const second = await postBatch(app, [signedItem('min_balance', 1, {}, VOX, 4000), ...forged.slice(0, 999)])
  t.equal(second.statusCode, 401)
  t.same(lookups, [4000, 5000])
  t.equal(events.length, 0)
})

t.test('a body over the limit is a 413 before it is read: the size comes before parsing', async t => {
  const { app, events } = await appWith({ edis: { bodyLimit: 200 }, voximplant: { secret: VOX, bodyLimit: 200 } })
  t.teardown(() => app.close())
  // Not JSON, not a form: a parser that ran would answer 400, a size check first answers 413.
  const vox = await app.inject({ method: 'POST', url: '/callbacks/voximplant', headers: { 'content-type': 'application/json' }, payload: '{' + 'x'.repeat(200) })
  t.equal(vox.statusCode, 413)
  t.same(vox.json(), TOO_LARGE)
  const edis = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: 'a=1&'.repeat(65) })
  t.equal(edis.statusCode, 413, 'a form of more fields than allowed, and over the limit: the limit first')
  t.same(edis.json(), TOO_LARGE)
  t.equal(events.length, 0)
})

/** Writes `data` to a real socket, never ends the client's side, and collects the answer until the server closes. */
function exchange (port: number, data: string, waitMs = 5000): Promise<{ answer: string, closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const text = (): string => Buffer.concat(chunks).toString('latin1')
    const socket = connect(port, '127.0.0.1', () => { socket.write(data, 'latin1') })
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ answer: text(), closedByServer: false })
    }, waitMs)
    socket.on('data', chunk => { chunks.push(chunk) })
    socket.on('end', () => {
      clearTimeout(timer)
      socket.end()
      resolve({ answer: text(), closedByServer: true })
    })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      // A reset once the answer is in is the server closing too, only less politely.
      if (error.code === 'ECONNRESET' && chunks.length > 0) resolve({ answer: text(), closedByServer: true })
      else reject(error)
    })
  })
}

// Each answer's status line; a second answer follows the first's body on the same line.
function statusLines (answer: string): string[] {
  return answer.match(/HTTP\/1\.1 \d{3}/g) ?? []
}

/** An app listening on a real port, with a host route that counts its hits (a smuggling target). */
async function listening (t: Test, options: ProviderCallbacksOptions): Promise<{ port: number, hostHits: () => number, events: unknown[] }> {
  const app = Fastify()
  let hits = 0
  app.get('/host-only', async () => { hits++; return { hits } })
  app.get('/health', async () => ({ ok: true }))
  await app.register(providerCallbacks, { idempotency: false, ...options })
  const events: unknown[] = []
  app.providerCallbacks.onAny(event => { events.push(event) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { port: (app.server.address() as AddressInfo).port, hostHits: () => hits, events }
}

const healthCheck = 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'

t.test('over a real socket: a declared body over the limit is answered 413 without being sent, and the connection closed', async t => {
  const { port, events } = await listening(t, { edis: { bodyLimit: 1000 }, voximplant: { secret: VOX, bodyLimit: 1000 } })
  const cases: Array<[string, string]> = [
    ['Voximplant, Content-Length over the limit', 'POST /callbacks/voximplant HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1001\r\n\r\n'],
    ['Voximplant, Content-Length of a gigabyte', 'POST /callbacks/voximplant HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n'],
    // Chunked: no length up front; the body is cut off once past the limit, the last chunk never sent.
    ['Voximplant, chunked past the limit', `POST /callbacks/voximplant HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n{"callbacks":[${' '.repeat(986)}\r\n`],
    ['EDIS, Content-Length over the limit', `POST /callbacks/edis HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: 1001\r\n\r\n`],
    ['EDIS, chunked past the limit', `POST /callbacks/edis HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n${'x'.repeat(1001)}\r\n`]
  ]
  for (const [name, head] of cases) {
    const { answer, closedByServer } = await exchange(port, head)
    t.match(answer, /^HTTP\/1\.1 413 /, `${name}: 413 with the body still unsent`)
    t.match(answer, /\r\nconnection: close\r\n/i, `${name}: the server says it closes`)
    t.ok(answer.endsWith(`\r\n\r\n${JSON.stringify(TOO_LARGE)}`), `${name}: the documented answer`)
    t.ok(closedByServer, `${name}: and closes, rather than wait for a body it will not read`)
  }
  const after = await exchange(port, healthCheck)
  t.match(after.answer, /^HTTP\/1\.1 200 /, 'the server serves the next connection')
  t.equal(events.length, 0)
})

t.test('over a real socket: a refused source or credentials are answered before the body, and an unread body is never taken for a request', async t => {
  const { port, hostHits, events } = await listening(t, {
    edis: { credentials: { username: 'hook', password: 'pw' } },
    voximplant: { secret: VOX, allowedIps: ['10.0.0.0/8'] }
  })
  const wrongBasic = basic('hook', 'wrong')
  // Refused before the body: the answer comes although the declared body is never sent.
  for (const [name, head, status] of [
    ['EDIS, wrong Basic credentials', `POST /callbacks/edis HTTP/1.1\r\nHost: x\r\nAuthorization: ${wrongBasic}\r\nContent-Type: ${FORM}\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n`, 401],
    ['Voximplant, a source not allowed (127.0.0.1)', 'POST /callbacks/voximplant HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n', 403]
  ] as const) {
    const { answer, closedByServer } = await exchange(port, head)
    t.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${status} with the body unsent`)
    t.ok(closedByServer, `${name}: the connection closed as asked`)
  }
  // Kept alive as far as the sender is concerned: the server answers the refusal with
  // `connection: close` and closes, so the declared body (which looks like a request to a host
  // route) is neither read for nothing nor taken for a request, and nothing after it is served.
  const smuggled = 'GET /host-only HTTP/1.1\r\nHost: x\r\n\r\n'
  for (const [name, head, status] of [
    ['EDIS, wrong Basic credentials', `POST /callbacks/edis HTTP/1.1\r\nHost: x\r\nAuthorization: ${wrongBasic}\r\nContent-Type: ${FORM}\r\nContent-Length: ${smuggled.length}\r\n\r\n`, 401],
    ['Voximplant, a source not allowed', `POST /callbacks/voximplant HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${smuggled.length}\r\n\r\n`, 403]
  ] as const) {
    const { answer, closedByServer } = await exchange(port, head + smuggled + healthCheck)
    t.same(statusLines(answer), [`HTTP/1.1 ${status}`], `${name}: one answer, the refusal`)
    t.match(answer, /\r\nconnection: close\r\n/i, `${name}: the refusal says the connection closes`)
    t.ok(closedByServer, `${name}: and the server closes it`)
  }
  t.equal(hostHits(), 0, 'the body of a refused request never reached a host route')
  t.equal(events.length, 0)
})

t.test('EDIS: a body over the field bound or the size limit is refused before field credentials are compared', async t => {
  const calls = watchCrypto(t)
  const credentials = { username: 'hook', password: 'pw' }
  const { app, events } = await appWith({ edis: { credentials, bodyLimit: 2000 } })
  t.teardown(() => app.close())
  const right = new URLSearchParams({ callback_user: credentials.username, callback_pw: credentials.password }).toString()
  const post = (payload: string) => app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload })
  const manyFields = await measured(calls, () => post(`${EDIS_BODIES.canonical}&${right}&${Array.from({ length: 62 }, (_, i) => `f${i}=1`).join('&')}`))
  t.equal(manyFields.result.statusCode, 400, '65 fields, the right credentials among them')
  t.same(manyFields.result.json().errors, [{ path: '', message: 'must have at most 64 fields' }])
  t.equal(manyFields.compared.length, 0, 'no credentials compared')
  const tooLarge = await measured(calls, () => post(`${EDIS_BODIES.canonical}&${right}&pad=${'x'.repeat(2000)}`))
  t.equal(tooLarge.result.statusCode, 413)
  t.equal(tooLarge.compared.length, 0, 'no credentials compared')
  const fine = await measured(calls, () => post(`${EDIS_BODIES.canonical}&${right}`))
  t.equal(fine.result.statusCode, 200)
  t.equal(fine.compared.length, 2, 'within the bounds, the credentials are compared')
  t.equal(events.length, 1)
})

// ---------------------------------------------------------------------------------------------
// The order of the checks (DESIGN.md, "One request, in order")

t.test('EDIS: source (403), then credentials (401), then the body (413/415/400); a refused source costs no comparison', async t => {
  const calls = watchCrypto(t)
  const credentials = { username: 'hook', password: 'pw' }
  const { app, events } = await appWith({ edis: { credentials, allowedIps: [ALLOWED], bodyLimit: 1000 } })
  t.teardown(() => app.close())
  const right = basic(credentials.username, credentials.password)
  const wrong = basic(credentials.username, 'nope')
  const rightFields = `callback_user=${credentials.username}&callback_pw=${credentials.password}`
  const invalid = 'kvm=&trigger_value=eighty'
  const cases: Array<[string, string, Record<string, string>, string, number, string]> = [
    ['a stranger, wrong credentials, an invalid body', STRANGER, { authorization: wrong }, invalid, 403, 'FORBIDDEN_SOURCE'],
    ['a stranger with the right credentials and a valid body', STRANGER, { authorization: right }, EDIS_BODIES.canonical, 403, 'FORBIDDEN_SOURCE'],
    ['a stranger with the right field credentials', STRANGER, {}, `${EDIS_BODIES.canonical}&${rightFields}`, 403, 'FORBIDDEN_SOURCE'],
    ['a stranger, a body over the limit', STRANGER, { authorization: right }, 'x'.repeat(1001), 403, 'FORBIDDEN_SOURCE'],
    ['a stranger, JSON', STRANGER, { authorization: right, 'content-type': 'application/json' }, '{}', 403, 'FORBIDDEN_SOURCE'],
    ['wrong Basic credentials, an invalid body', ALLOWED, { authorization: wrong }, invalid, 401, 'UNAUTHORIZED'],
    ['wrong Basic credentials, a body over the limit', ALLOWED, { authorization: wrong }, 'x'.repeat(1001), 401, 'UNAUTHORIZED'],
    ['wrong Basic credentials, JSON', ALLOWED, { authorization: wrong, 'content-type': 'application/json' }, '{}', 401, 'UNAUTHORIZED'],
    ['wrong field credentials, an invalid body', ALLOWED, {}, `${invalid}&callback_user=hook&callback_pw=nope`, 401, 'UNAUTHORIZED'],
    ['no credentials, an invalid body', ALLOWED, {}, invalid, 401, 'UNAUTHORIZED'],
    ['right Basic credentials, a body over the limit', ALLOWED, { authorization: right }, 'x'.repeat(1001), 413, 'PAYLOAD_TOO_LARGE'],
    ['right Basic credentials, JSON', ALLOWED, { authorization: right, 'content-type': 'application/json' }, '{}', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['right Basic credentials, an invalid body', ALLOWED, { authorization: right }, invalid, 400, 'INVALID_PAYLOAD'],
    ['right field credentials, an invalid body', ALLOWED, {}, `${invalid}&${rightFields}`, 400, 'INVALID_PAYLOAD'],
    ['right credentials, a valid body', ALLOWED, { authorization: right }, EDIS_BODIES.canonical, 200, '']
  ]
  for (const [name, remoteAddress, headers, payload, status, code] of cases) {
    const { result: res, compared } = await measured(calls, () => app.inject({ method: 'POST', url: '/callbacks/edis', remoteAddress, headers: { 'content-type': FORM, ...headers }, payload }))
    t.equal(res.statusCode, status, name)
    if (code !== '') t.equal(res.json().code, `FST_PROVIDER_CALLBACKS_${code}`, name)
    if (status === 403) t.equal(compared.length, 0, `${name}: no credentials compared`)
  }
  const get = await measured(calls, () => app.inject({ method: 'GET', url: `/callbacks/edis?${EDIS_BODIES.canonical}&${rightFields}`, remoteAddress: STRANGER }))
  t.equal(get.result.statusCode, 403, 'a GET from a stranger with the right query credentials')
  t.equal(get.compared.length, 0)
  t.equal(events.length, 1)
})

t.test('Voximplant: source (403), then size (413) and JSON (400), then the batch bound (413), every hash (401), the schema (400)', async t => {
  const calls = watchCrypto(t)
  const lookups: number[] = []
  const getSecret = (accountId: number): VoximplantSecret => {
    lookups.push(accountId)
    return VOX
  }
  const { app, events } = await appWith({ voximplant: { getSecret, allowedIps: [ALLOWED], maxItems: 3, bodyLimit: 4096 } })
  t.teardown(() => app.close())
  const forged = { ...signedItem('min_balance', 1), hash: '0'.repeat(32) }
  const invalid = signedItem('min_balance', 2, { min_balance: { is_min_credit: 'no' } })
  const send = (remoteAddress: string, payload: string, contentType = 'application/json') =>
    app.inject({ method: 'POST', url: '/callbacks/voximplant', remoteAddress, headers: { 'content-type': contentType }, payload })
  const batch = (...items: unknown[]): string => JSON.stringify({ callbacks: items })
  const cases: Array<[string, string, string, string | undefined, number, string]> = [
    ['a stranger, a forged batch over maxItems', STRANGER, batch(forged, forged, forged, forged), undefined, 403, 'FORBIDDEN_SOURCE'],
    ['a stranger, a valid batch', STRANGER, batch(signedItem('min_balance', 3)), undefined, 403, 'FORBIDDEN_SOURCE'],
    ['a stranger, not JSON', STRANGER, '{', undefined, 403, 'FORBIDDEN_SOURCE'],
    ['a body over the limit', ALLOWED, batch(forged, 'x'.repeat(4096)), undefined, 413, 'PAYLOAD_TOO_LARGE'],
    ['a form', ALLOWED, 'callbacks=1', FORM, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['truncated JSON', ALLOWED, '{"callbacks":[', undefined, 400, 'MALFORMED_BODY'],
    ['a forged batch over maxItems', ALLOWED, batch(forged, forged, forged, forged), undefined, 413, 'BATCH_TOO_LARGE'],
    ['a forged item that is also invalid', ALLOWED, batch({ ...invalid, hash: '0'.repeat(32) }), undefined, 401, 'UNAUTHORIZED'],
    ['a signed item and a forged one', ALLOWED, batch(signedItem('min_balance', 4), forged), undefined, 401, 'UNAUTHORIZED'],
    ['a signed item that is invalid', ALLOWED, batch(invalid), undefined, 400, 'INVALID_PAYLOAD'],
    ['a valid batch', ALLOWED, batch(signedItem('min_balance', 5)), undefined, 200, '']
  ]
  for (const [name, remoteAddress, payload, contentType, status, code] of cases) {
    lookups.length = 0
    const { result: res, md5 } = await measured(calls, () => send(remoteAddress, payload, contentType))
    t.equal(res.statusCode, status, name)
    if (code !== '') t.equal(res.json().code, `FST_PROVIDER_CALLBACKS_${code}`, name)
    // Nothing before the hash check looks up a secret or computes a hash.
    if (status !== 200 && code !== 'UNAUTHORIZED' && code !== 'INVALID_PAYLOAD') {
      t.same({ lookups: lookups.length, md5 }, { lookups: 0, md5: 0 }, `${name}: no secret looked up, no hash computed`)
    } else {
      t.ok(lookups.length > 0 && md5 > 0, `${name}: the hashes were checked`)
    }
  }
  t.equal(events.length, 1)
})

// ---------------------------------------------------------------------------------------------
// allowedIps and X-Forwarded-For

type TrustProxy = FastifyServerOptions['trustProxy']
interface SourceCase {
  name: string
  trustProxy: TrustProxy
  remoteAddress: string
  headers: Record<string, string>
  status: 200 | 403
  /** Already in edis-source.test.ts for EDIS: run for Voximplant only. */
  voximplantOnly?: boolean
}

const sourceCases: SourceCase[] = [
  { name: 'no trustProxy: a spoofed X-Forwarded-For is ignored', trustProxy: undefined, remoteAddress: STRANGER, headers: { 'x-forwarded-for': ALLOWED }, status: 403, voximplantOnly: true },
  {
    name: 'no trustProxy: nor are Forwarded, X-Real-IP and the CDN headers',
    trustProxy: undefined,
    remoteAddress: STRANGER,
    headers: { forwarded: `for=${ALLOWED}`, 'x-real-ip': ALLOWED, 'true-client-ip': ALLOWED, 'cf-connecting-ip': ALLOWED, 'x-client-ip': ALLOWED, 'fastly-client-ip': ALLOWED },
    status: 403
  },
  { name: 'no trustProxy: several entries naming the allowed address change nothing', trustProxy: undefined, remoteAddress: STRANGER, headers: { 'x-forwarded-for': `${ALLOWED}, ${ALLOWED}` }, status: 403 },
  { name: 'no trustProxy: nor can the header lock the real source out', trustProxy: undefined, remoteAddress: ALLOWED, headers: { 'x-forwarded-for': STRANGER }, status: 200 },
  { name: 'no trustProxy: the allowed address as an IPv4-mapped IPv6 peer', trustProxy: undefined, remoteAddress: `::ffff:${ALLOWED}`, headers: {}, status: 200, voximplantOnly: true },
  { name: 'no trustProxy: a stranger as an IPv4-mapped IPv6 peer, with a spoofed header', trustProxy: undefined, remoteAddress: `::ffff:${STRANGER}`, headers: { 'x-forwarded-for': ALLOWED }, status: 403 },
  { name: 'trustProxy true: every hop is trusted, so the leftmost entry is the source', trustProxy: true, remoteAddress: STRANGER, headers: { 'x-forwarded-for': ALLOWED }, status: 200 },
  { name: 'trustProxy true: the header is honoured both ways', trustProxy: true, remoteAddress: ALLOWED, headers: { 'x-forwarded-for': STRANGER }, status: 403 },
  { name: 'a trusted proxy: its header names the source', trustProxy: PROXY, remoteAddress: PROXY, headers: { 'x-forwarded-for': ALLOWED }, status: 200, voximplantOnly: true },
  { name: 'a trusted proxy: another peer\'s header is ignored', trustProxy: PROXY, remoteAddress: STRANGER, headers: { 'x-forwarded-for': ALLOWED }, status: 403, voximplantOnly: true },
  { name: 'a trusted proxy: an entry the client prepended does not count; the rightmost untrusted hop is the client', trustProxy: PROXY, remoteAddress: PROXY, headers: { 'x-forwarded-for': `${ALLOWED}, ${STRANGER}` }, status: 403 },
  { name: 'a trusted proxy: the rightmost untrusted hop allowed', trustProxy: PROXY, remoteAddress: PROXY, headers: { 'x-forwarded-for': `${STRANGER}, ${ALLOWED}` }, status: 200 },
  { name: 'a trusted proxy: the proxy itself is not the provider', trustProxy: PROXY, remoteAddress: PROXY, headers: {}, status: 403 },
  { name: 'two trusted proxies in a chain: both skipped', trustProxy: [PROXY, '10.0.0.2'], remoteAddress: PROXY, headers: { 'x-forwarded-for': `${STRANGER}, ${ALLOWED}, 10.0.0.2` }, status: 200 },
  { name: 'two trusted proxies in a chain: a stranger behind them', trustProxy: [PROXY, '10.0.0.2'], remoteAddress: PROXY, headers: { 'x-forwarded-for': `${ALLOWED}, ${STRANGER}, 10.0.0.2` }, status: 403 },
  { name: 'a trusted range: a proxy in it', trustProxy: '10.0.0.0/8', remoteAddress: '10.9.8.7', headers: { 'x-forwarded-for': ALLOWED }, status: 200 },
  { name: 'a trusted range: a peer outside it', trustProxy: '10.0.0.0/8', remoteAddress: '11.0.0.1', headers: { 'x-forwarded-for': ALLOWED }, status: 403 },
  { name: 'a trustProxy function: the peer it trusts', trustProxy: (address: string) => address === PROXY, remoteAddress: PROXY, headers: { 'x-forwarded-for': ALLOWED }, status: 200 },
  { name: 'a trustProxy function: a peer it does not', trustProxy: (address: string) => address === PROXY, remoteAddress: STRANGER, headers: { 'x-forwarded-for': ALLOWED }, status: 403 },
  { name: 'IPv4-mapped: the trusted proxy as ::ffff:10.0.0.1', trustProxy: PROXY, remoteAddress: `::ffff:${PROXY}`, headers: { 'x-forwarded-for': ALLOWED }, status: 200 },
  { name: 'IPv4-mapped: the allowed address as ::ffff:', trustProxy: PROXY, remoteAddress: `::ffff:${PROXY}`, headers: { 'x-forwarded-for': `::ffff:${ALLOWED}` }, status: 200 },
  { name: 'IPv4-mapped: a stranger as ::ffff:', trustProxy: PROXY, remoteAddress: `::ffff:${PROXY}`, headers: { 'x-forwarded-for': `::ffff:${STRANGER}` }, status: 403 },
  { name: 'IPv4-mapped: an untrusted mapped peer\'s header is ignored', trustProxy: PROXY, remoteAddress: `::ffff:${STRANGER}`, headers: { 'x-forwarded-for': ALLOWED }, status: 403 },
  { name: 'a malformed entry fails closed: with a port', trustProxy: PROXY, remoteAddress: PROXY, headers: { 'x-forwarded-for': `${ALLOWED}:443` }, status: 403 },
  { name: 'a malformed entry fails closed: in brackets', trustProxy: PROXY, remoteAddress: PROXY, headers: { 'x-forwarded-for': `[${ALLOWED}]` }, status: 403 },
  { name: 'a malformed entry fails closed: a name', trustProxy: PROXY, remoteAddress: PROXY, headers: { 'x-forwarded-for': 'unknown' }, status: 403 }
]

t.test('allowedIps cannot be bypassed with X-Forwarded-For unless trustProxy says so, on both routes', async t => {
  const apps = new Map<string, FastifyInstance>()
  const appFor = async (provider: 'edis' | 'voximplant', trustProxy: TrustProxy): Promise<FastifyInstance> => {
    const key = `${provider}:${typeof trustProxy === 'function' ? 'function' : JSON.stringify(trustProxy)}`
    let app = apps.get(key)
    if (app === undefined) {
      const options = provider === 'edis' ? { edis: { allowedIps: [ALLOWED] } } : { voximplant: { secret: VOX, allowedIps: [ALLOWED] } }
      app = (await appWith(options, trustProxy === undefined ? {} : { trustProxy })).app
      apps.set(key, app)
    }
    return app
  }
  t.teardown(() => Promise.all([...apps.values()].map(app => app.close())))
  let callbackId = 0
  for (const provider of ['edis', 'voximplant'] as const) {
    for (const { name, trustProxy, remoteAddress, headers, status, voximplantOnly } of sourceCases) {
      if (voximplantOnly === true && provider === 'edis') continue
      const app = await appFor(provider, trustProxy)
      const res = provider === 'edis'
        ? await app.inject({ method: 'POST', url: '/callbacks/edis', remoteAddress, headers: { 'content-type': FORM, ...headers }, payload: EDIS_BODIES.canonical })
        : await app.inject({ method: 'POST', url: '/callbacks/voximplant', remoteAddress, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify({ callbacks: [signedItem('min_balance', ++callbackId)] }) })
      t.equal(res.statusCode, status, `${provider}: ${name}`)
      if (status === 403) t.same(res.json(), FORBIDDEN, `${provider}: ${name}`)
    }
  }
})

// ---------------------------------------------------------------------------------------------
// No secret in logs or answers

const LIVE = { apiKey: 'vox-live-key-5b1d2c9e-e0c4', salt: 'vox-live-salt-Zq8wYt' }
const ROTATED = { apiKey: 'vox-rotated-key-77aa10fe', salt: 'vox-rotated-salt-Kp3n' }
const ACCOUNT = 1234567
const NO_SECRET_ACCOUNT = 2000001
const VAULT_DOWN_ACCOUNT = 2000002
const BROKEN_LOOKUP_ACCOUNT = 2000003

/** A store whose answers a test sets: working, down, or with every event in flight elsewhere. */
function switchableStore (): IdempotencyStore & { mode: 'up' | 'down' | 'busy' } {
  const done = new Set<string>()
  return {
    mode: 'up',
    async claim (key): Promise<ClaimResult> {
      if (this.mode === 'down') throw new Error('connect ECONNREFUSED 127.0.0.1:6379')
      if (this.mode === 'busy') return 'in-flight'
      return done.has(key) ? 'done' : 'claimed'
    },
    async complete (key) { done.add(key) },
    async release () {}
  }
}

t.test('Voximplant at trace level, with static secrets and with getSecret: no API key or salt in any log line or answer, whatever the outcome', async t => {
  // voximplant-secrets.test.ts already runs static secrets through success, a forged hash, an
  // invalid item and a failing handler; here getSecret through all of them, and both kinds of secret
  // through what that test does not reach: the store down or busy, bodies refused before the hash.
  for (const kind of ['getSecret', 'static'] as const) {
    const lines: string[] = []
    const app = Fastify({ logger: { level: 'trace', stream: { write: (line: string) => { lines.push(line) } } } })
    t.teardown(() => app.close())
    const store = switchableStore()
    const getSecret = async (accountId: number) => {
      if (accountId === VAULT_DOWN_ACCOUNT) throw new Error('vault unreachable')
      // A host bug: the key is there, the salt is not a string. The error must name the field, not the value.
      if (accountId === BROKEN_LOOKUP_ACCOUNT) return { apiKey: LIVE.apiKey, salt: 42 } as unknown as VoximplantSecret
      return accountId === ACCOUNT ? [ROTATED, LIVE] : null
    }
    await app.register(providerCallbacks, {
      voximplant: kind === 'getSecret' ? { getSecret, maxItems: 5, bodyLimit: 16_384 } : { secret: [ROTATED, LIVE], maxItems: 5, bodyLimit: 16_384 },
      idempotency: { store }
    })
    let failing = false
    app.providerCallbacks.onAny(() => { if (failing) throw new Error('handler failed') })
    let id = 0
    const signed = (fields: Record<string, unknown> = {}, secret: VoximplantSecret = LIVE, account = ACCOUNT) => signedItem('min_balance', ++id, fields, secret, account)
    const first = signed()
    const post = (payload: string, contentType = 'application/json') =>
      app.inject({ method: 'POST', url: '/callbacks/voximplant', headers: { 'content-type': contentType }, payload })
    const batch = (...items: unknown[]) => JSON.stringify({ callbacks: items })
    const requests: Array<{ name: string, status: number, send: () => ReturnType<typeof post>, lookupOnly?: boolean, before?: () => void }> = [
      { name: 'success', status: 200, send: () => post(batch(first)) },
      { name: 'success, the rotated secret', status: 200, send: () => post(batch(signed({}, ROTATED))), lookupOnly: true },
      { name: 'a forged hash', status: 401, send: () => post(batch(signed({}, { apiKey: 'guess', salt: LIVE.salt }))), lookupOnly: true },
      { name: 'the API key sent as the hash', status: 401, send: () => post(batch({ ...signed(), hash: LIVE.apiKey })), lookupOnly: true },
      { name: 'an invalid signed item', status: 400, send: () => post(batch(signed({ min_balance: { is_min_credit: LIVE.salt } }, LIVE))), lookupOnly: true },
      { name: 'a handler that fails', status: 500, send: () => post(batch(signed())), lookupOnly: true, before: () => { failing = true } },
      // (Static secrets without an accountId sign every account: there, no account is without one.)
      { name: 'an account without a secret', status: 401, send: () => post(batch(signed({}, LIVE, NO_SECRET_ACCOUNT))), lookupOnly: true },
      { name: 'getSecret rejects', status: 500, send: () => post(batch(signed({}, LIVE, VAULT_DOWN_ACCOUNT))), lookupOnly: true },
      { name: 'getSecret answers a malformed secret', status: 500, send: () => post(batch(signed({}, LIVE, BROKEN_LOOKUP_ACCOUNT))), lookupOnly: true },
      { name: 'the store down', status: 503, send: () => post(batch(signed())), before: () => { failing = false; store.mode = 'down' } },
      { name: 'the event in flight elsewhere', status: 409, send: () => post(batch(signed())), before: () => { store.mode = 'busy' } },
      { name: 'a redelivery of a done event', status: 200, send: () => post(batch(first)), before: () => { store.mode = 'up' } },
      { name: 'malformed JSON', status: 400, send: () => post('{"callbacks":[') },
      { name: 'a __proto__ key', status: 400, send: () => post(`{"callbacks":[],"__proto__":{"apiKey":"${LIVE.apiKey}"}}`) },
      { name: 'a form', status: 415, send: () => post('callbacks=1', FORM) },
      { name: 'a body over the limit', status: 413, send: () => post(batch(signed({ pad: 'x'.repeat(16_384) }))) },
      { name: 'a batch over maxItems', status: 413, send: () => post(batch(...Array.from({ length: 6 }, () => signed()))) }
    ]
    const answers: string[] = []
    const statuses: number[] = []
    const expected: number[] = []
    for (const request of requests) {
      if (request.lookupOnly === true && kind === 'static') continue
      request.before?.()
      const res = await request.send()
      statuses.push(res.statusCode)
      expected.push(request.status)
      answers.push(JSON.stringify(res.headers), res.body)
    }
    t.same(statuses, expected, `${kind}: every kind of outcome was reached`)
    t.ok(lines.length >= 2 * statuses.length, `${kind}: the run logged every request (${lines.length} lines)`)
    const log = lines.join('\n')
    for (const secret of [LIVE.apiKey, LIVE.salt, ROTATED.apiKey, ROTATED.salt, `${LIVE.salt}${ACCOUNT}${LIVE.apiKey}`]) {
      t.notOk(log.includes(secret), `${kind}: the log never contains ${secret}`)
      t.notOk(answers.join('\n').includes(secret), `${kind}: no answer contains ${secret}`)
    }
  }
})

t.test('an error getSecret throws is the host\'s own: never in an answer', async t => {
  // The plugin logs it as the cause of the 500 (voximplant-secrets.test.ts checks that), as it must
  // for the host to find its bug; it cannot know what the host put in the message, so a host whose
  // vault client puts a key in its errors has that key in its logs. Answers never carry it.
  const { app } = await appWith({ voximplant: { getSecret: () => { throw new Error(`vault: no access with token ${LIVE.apiKey}`) } } })
  t.teardown(() => app.close())
  const res = await postBatch(app, [signedItem('min_balance', 1)])
  t.equal(res.statusCode, 500)
  t.same(res.json(), { status: 'error', message: 'Internal server error occurred while processing the callback.', code: 'FST_PROVIDER_CALLBACKS_INTERNAL' })
  t.notOk(res.body.includes(LIVE.apiKey))
})

t.test('EDIS: a GET whose credential field names are percent-encoded is accepted, so its log line must hide them too', async t => {
  // The query parser decodes field names, so callback%5Fpw is callback_pw and the credentials are
  // accepted; the log serializer must hide them under any spelling the parser accepts.
  const credentials = { username: 'hook', password: 'edis-hook-password-9d2f' }
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'trace', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(providerCallbacks, { edis: { credentials }, idempotency: false })
  for (const [user, pw] of [['callback%5Fuser', 'callback%5Fpw'], ['callback_user', 'callback_p%77'], ['callback%5fuser', 'c%61llback_pw']]) {
    const res = await app.inject({ method: 'GET', url: `/callbacks/edis?${EDIS_BODIES.canonical}&${user}=${credentials.username}&${pw}=${credentials.password}` })
    t.equal(res.statusCode, 200, `${user}, ${pw}: accepted as the credentials`)
  }
  t.ok(lines.length > 0)
  t.notOk(lines.join('\n').includes(credentials.password), 'the log never contains the password')
})
