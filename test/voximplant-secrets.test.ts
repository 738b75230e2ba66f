import Fastify, { type FastifyRequest } from 'fastify'
import t from 'tap'
import providerCallbacks, { type ProviderCallbacksOptions, type VoximplantSecret } from '../lib/index.js'
import { appWith, postBatch, signedItem, VOX } from './helpers.js'

const current = { apiKey: VOX.apiKey, salt: VOX.salt }
const next = { apiKey: 'f1d2a3b4-0000-4000-8000-000000000001', salt: 'aNewSalt' }
const OTHER_ACCOUNT = 7654321

t.test('several static secrets during a rotation: callbacks signed with either verify', async t => {
  const { app, events } = await appWith({ voximplant: { secret: [current, next] } })
  t.teardown(() => app.close())
  const res = await postBatch(app, [signedItem('min_balance', 1, {}, current), signedItem('min_balance', 2, {}, next)])
  t.equal(res.statusCode, 200)
  t.equal(events.length, 2)
  const mixed = await postBatch(app, [signedItem('min_balance', 3, {}, { apiKey: current.apiKey, salt: next.salt })])
  t.equal(mixed.statusCode, 401, 'the key of one secret with the salt of another is no secret')
})

t.test('a secret scoped by accountId signs only that account; unscoped ones sign every account', async t => {
  const { app, events } = await appWith({ voximplant: { secret: [{ ...next, accountId: OTHER_ACCOUNT }, { ...current, accountId: String(VOX.accountId) }] } })
  t.teardown(() => app.close())
  t.equal((await postBatch(app, [signedItem('min_balance', 1, {}, next, OTHER_ACCOUNT)])).statusCode, 200)
  t.equal((await postBatch(app, [signedItem('min_balance', 2, {}, current)])).statusCode, 200, 'an accountId given as a string works')
  t.equal((await postBatch(app, [signedItem('min_balance', 3, {}, next)])).statusCode, 401, 'another account\'s secret does not sign this one')
  t.equal((await postBatch(app, [signedItem('min_balance', 4, {}, current, 1111)])).statusCode, 401, 'an account with no secret')
  t.equal(events.length, 2)

  const withFallback = await appWith({ voximplant: { secret: [{ ...next, accountId: OTHER_ACCOUNT }, current] } })
  t.teardown(() => withFallback.app.close())
  t.equal((await postBatch(withFallback.app, [signedItem('min_balance', 5, {}, current, OTHER_ACCOUNT)])).statusCode, 200, 'the unscoped secret serves the scoped account too')
  t.equal((await postBatch(withFallback.app, [signedItem('min_balance', 6, {}, current, 1111)])).statusCode, 200)
  t.equal((await postBatch(withFallback.app, [signedItem('min_balance', 7, {}, next, 1111)])).statusCode, 401)
})

t.test('getSecret: sync or async, one or several or none, called once per account in a batch', async t => {
  const calls: Array<[number, string]> = []
  const secrets: Record<number, unknown> = {
    [VOX.accountId]: current,
    [OTHER_ACCOUNT]: [next, current],
    1111: null,
    2222: undefined,
    3333: []
  }
  for (const mode of ['sync', 'async']) {
    calls.length = 0
    const getSecret = (accountId: number, request: FastifyRequest) => {
      calls.push([accountId, request.url])
      const found = secrets[accountId] as VoximplantSecret
      return mode === 'sync' ? found : Promise.resolve(found)
    }
    const { app, events } = await appWith({ voximplant: { getSecret } })
    t.teardown(() => app.close())
    const batch = [
      signedItem('min_balance', 1, {}, current),
      signedItem('card_payment', 2, {}, next, OTHER_ACCOUNT),
      signedItem('card_payment', 3, {}, current),
      signedItem('card_payment', 4, {}, current, OTHER_ACCOUNT)
    ]
    t.equal((await postBatch(app, batch)).statusCode, 200, mode)
    t.same(calls, [[VOX.accountId, '/callbacks/voximplant'], [OTHER_ACCOUNT, '/callbacks/voximplant']], `${mode}: once per account, with the request`)
    t.equal(events.length, 4)
    for (const account of [1111, 2222, 3333]) {
      const res = await postBatch(app, [signedItem('min_balance', 5, {}, current, account)])
      t.equal(res.statusCode, 401, `${mode}: no secret for ${account}`)
    }
  }
})

t.test('a failing or broken getSecret is a 500, and nothing is emitted', async t => {
  for (const [name, getSecret] of [
    ['throws', () => { throw new Error('vault unreachable') }],
    ['rejects', async () => { throw new Error('vault unreachable') }],
    ['returns no apiKey', () => ({ salt: 'x' })],
    ['returns a non-string salt', () => ({ apiKey: 'k', salt: 5 })],
    ['returns a string', () => 'the-api-key']
  ] as const) {
    const lines: string[] = []
    const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
    t.teardown(() => app.close())
    await app.register(providerCallbacks, { voximplant: { getSecret: getSecret as never } })
    let emitted = 0
    app.providerCallbacks.onAny(() => { emitted++ })
    const res = await postBatch(app, [signedItem('min_balance', 1)])
    t.equal(res.statusCode, 500, name)
    t.same(res.json(), { status: 'error', message: 'Internal server error occurred while processing the callback.', code: 'FST_PROVIDER_CALLBACKS_INTERNAL' }, name)
    t.equal(emitted, 0)
    t.match(lines.join(''), name.startsWith('returns') ? /returned by voximplant\.getSecret/ : /vault unreachable/, `${name}: the cause is logged`)
    t.notMatch(lines.join(''), 'the-api-key')
  }
})

t.test('bad Voximplant options fail at registration with a clear message', async t => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['neither secret nor getSecret', {}, /voximplant needs either secret \(\{ apiKey, salt \}\) or getSecret\(accountId, request\), and not both/],
    ['both', { secret: current, getSecret: () => current }, /and not both/],
    ['an empty secret list', { secret: [] }, /voximplant.secret must not be an empty array/],
    ['no apiKey', { secret: { salt: 'x' } }, /voximplant.secret.apiKey must be a non-empty string/],
    ['an empty apiKey (an unset env var)', { secret: [current, { apiKey: '' }] }, /voximplant.secret\[1\].apiKey must be a non-empty string/],
    ['a non-string salt', { secret: { apiKey: 'k', salt: 42 } }, /voximplant.secret.salt must be a string when set/],
    ['a bad accountId', { secret: { apiKey: 'k', accountId: 'acc-1' } }, /voximplant.secret.accountId must be an account id \(digits\), got "acc-1"/],
    ['a bad accountId in a list', { secret: [current, { apiKey: 'k', accountId: -1 }] }, /voximplant.secret\[1\].accountId must be an account id/],
    ['getSecret not a function', { getSecret: 'vault' }, /voximplant.getSecret must be a function/],
    ['voximplant not an object', 'yes', /voximplant must be an object or false/],
    ['an empty path', { secret: current, path: '' }, /voximplant.path must be a non-empty path/],
    ['a bad maxItems', { secret: current, maxItems: 0 }, /voximplant.maxItems must be a positive integer, got 0/],
    ['a bad bodyLimit', { secret: current, bodyLimit: 1.5 }, /voximplant.bodyLimit must be a positive integer, got 1.5/],
    ['a malformed allowedIps entry', { secret: current, allowedIps: ['10.0.0.300'] }, /voximplant.allowedIps: "10.0.0.300" is not an IP address/]
  ]
  for (const [name, voximplant, message] of cases) {
    const app = Fastify()
    const error = await app.register(providerCallbacks, { voximplant } as ProviderCallbacksOptions).ready().then(() => null, (e: Error) => e)
    t.match(error, { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message }, name)
    t.notMatch(String(error?.message), VOX.apiKey)
    await app.close()
  }
})

t.test('both providers in one registration, each on its own route', async t => {
  const { app, events } = await appWith({ edis: {}, voximplant: { secret: current, path: '/vox' } })
  t.teardown(() => app.close())
  const vox = await app.inject({ method: 'POST', url: '/callbacks/vox', payload: { callbacks: [signedItem('min_balance', 1)] } })
  t.equal(vox.statusCode, 200)
  const edis = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'kvm=k&trigger_value=5' })
  t.equal(edis.statusCode, 200)
  const jsonToEdis = await app.inject({ method: 'POST', url: '/callbacks/edis', payload: { callbacks: [] } })
  t.equal(jsonToEdis.statusCode, 415, 'each route keeps its own parsers')
  t.same(events.map(e => e.name), ['min-balance', 'traffic-threshold'])
})

t.test('no API key or salt reaches a log line or an answer', async t => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'trace', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(providerCallbacks, { voximplant: { secret: [current, next] }, idempotency: false })
  let fail = false
  app.providerCallbacks.onAny(() => { if (fail) throw new Error('handler failed') })
  const answers: string[] = []
  for (const failing of [false, true]) {
    fail = failing
    for (const callbacks of [
      [signedItem('min_balance', 1)],
      [signedItem('min_balance', 2, {}, { apiKey: 'wrong-key', salt: current.salt })],
      [signedItem('min_balance', 3, { min_balance: 'bad' })],
      [{ ...signedItem('min_balance', 4), hash: current.apiKey }]
    ]) {
      answers.push((await postBatch(app, callbacks)).body)
    }
  }
  const log = lines.join('\n')
  t.ok(lines.length > 20)
  for (const secret of [current.apiKey, current.salt, next.apiKey, next.salt]) {
    t.notOk(log.includes(secret), `the log never contains ${secret}`)
    t.notOk(answers.join('').includes(secret), `no answer contains ${secret}`)
  }
})
