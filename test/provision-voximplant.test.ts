// voximplantWebhook against a fake Management API over real HTTP: the multipart form with cmd, the
// RS256 JWT (header and claims, verified with the public key of a generated pair), the documented
// answers, and failures without the key, the token or the account's api_key.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ProvisionError, voximplantWebhook } from '../lib/index.js'
import { closedPort, FakeVoximplant } from './fake-providers.js'
import { fakeClock } from './helpers.js'

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const KEY = {
  account_email: 'svc@acme.voximplant.com',
  account_id: 1234567,
  key_id: '5d2b1f0e-7c3a-4e8b-9a61-2f4c8d7e6b10',
  private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}
const dir = mkdtempSync(join(tmpdir(), 'vox-key-'))
const KEY_FILE = join(dir, 'key.json')
writeFileSync(KEY_FILE, JSON.stringify(KEY))
const URL_ = 'https://example.com/callbacks/voximplant'

const fake = await new FakeVoximplant(publicKey, KEY.account_id).start(t)
const client = (options = {}) => voximplantWebhook({ credentials: KEY_FILE, apiUrl: `${fake.base}/`, ...options })

t.test('show: GetAccountInfo as a multipart form, a JWT as the SDKs make it; the URL and whether a salt is set', async t => {
  const clock = fakeClock(t, ['Date'])
  const webhook = client()
  t.same(await webhook.show(), { accountId: 1234567, callbackUrl: undefined, saltSet: false })
  const [request] = fake.to('/platform_api')
  t.equal(request?.method, 'POST')
  const call = fake.calls.at(-1)
  t.match(call?.contentType, /^multipart\/form-data; boundary=/)
  t.same(call?.fields, { cmd: 'GetAccountInfo' })
  const iat = Math.floor(Date.now() / 1000)
  t.same(call?.jwt, { header: { alg: 'RS256', typ: 'JWT', kid: KEY.key_id }, claims: { iss: 1234567, iat, exp: iat + 64 }, verified: true },
    'RS256 with the key file\'s key, kid = key_id, iss = account_id, valid 64 s')

  fake.account.callback_url = 'https://old.example.com/hook'
  fake.account.callback_salt = 'old-salt'
  clock.tick(5000)
  t.same(await webhook.show(), { accountId: 1234567, callbackUrl: 'https://old.example.com/hook', saltSet: true })
  t.equal(fake.calls.at(-1)?.jwt?.claims.iat, iat + 5, 'a fresh token for each request')
})

t.test('set: SetAccountInfo with callback_url and callback_salt', async t => {
  const webhook = voximplantWebhook({ credentials: KEY, apiUrl: fake.base })
  t.same(await webhook.set({ url: URL_, salt: 'my salt ü 40 chars at most' }), { salt: 'my salt ü 40 chars at most' })
  t.same(fake.calls.at(-1)?.fields, { cmd: 'SetAccountInfo', callback_url: URL_, callback_salt: 'my salt ü 40 chars at most' })
  t.match(fake.account, { callback_url: URL_, callback_salt: 'my salt ü 40 chars at most' }, 'Voximplant has them')

  const generated = await webhook.set({ url: URL_ })
  t.match(generated.salt, /^[\w-]{32}$/, 'a salt not given: 32 URL-safe characters, under Voximplant\'s 40')
  t.equal(fake.account.callback_salt, generated.salt)
  t.not((await webhook.set({ url: URL_ })).salt, generated.salt, 'fresh every time')

  t.same(await webhook.set({ url: 'http://other.example.com/cb', salt: false }), { salt: undefined })
  t.same(fake.calls.at(-1)?.fields, { cmd: 'SetAccountInfo', callback_url: 'http://other.example.com/cb' }, 'salt false: no callback_salt field, the salt kept')
  t.equal(fake.account.callback_salt, fake.calls.at(-2)?.fields.callback_salt)

  const before = fake.calls.length
  await t.rejects(webhook.set({ url: URL_, salt: 'x'.repeat(41) }), new TypeError('the salt must have 1 to 40 characters, it has 41'))
  await t.rejects(webhook.set({ url: URL_, salt: '' }), new TypeError('the salt must have 1 to 40 characters, it has 0'))
  await t.rejects(webhook.set({ url: 'ftp://example.com' }), new TypeError('url must be an http or https URL, got \'ftp://example.com\''))
  t.equal(fake.calls.length, before, 'refused before any request')
})

t.test('the key file: its JSON or its path; a bad one says why without showing it', async t => {
  t.same(await voximplantWebhook({ credentials: { ...KEY, account_id: '1234567' }, apiUrl: fake.base }).show().then(s => s.accountId), 1234567, 'account_id as a string')
  t.throws(() => voximplantWebhook({ credentials: join(dir, 'missing.json') }), { message: `cannot read the Voximplant key file ${join(dir, 'missing.json')}: ENOENT` })
  const broken = join(dir, 'broken.json')
  writeFileSync(broken, KEY.private_key)
  t.throws(() => voximplantWebhook({ credentials: broken }), { message: `cannot read the Voximplant key file ${broken}: not JSON` })
  const partial = join(dir, 'partial.json')
  writeFileSync(partial, JSON.stringify({ account_id: 1, private_key: KEY.private_key }))
  t.throws(() => voximplantWebhook({ credentials: partial }), { message: `the Voximplant credentials are not a service-account key file (account_id, key_id, private_key): ${partial}` })
  t.throws(() => voximplantWebhook({ credentials: { ...KEY, private_key: 'not a key' } }), { message: 'the Voximplant key file\'s private_key is not a private key in PEM' })
  t.throws(() => voximplantWebhook({ credentials: { ...KEY, account_id: -1 } }), { message: 'the Voximplant credentials are not a service-account key file (account_id, key_id, private_key)' })
})

t.test('failures: the call and what came back, never the key, the token or the account\'s api_key', async t => {
  const webhook = client()
  const failed = async (promise: Promise<unknown>): Promise<ProvisionError> => {
    const error = await promise.then(() => undefined, (e: unknown) => e)
    t.type(error, ProvisionError)
    const text = String((error as Error).message)
    for (const secret of [fake.apiKey, 'PRIVATE KEY', String(fake.calls.at(-1)?.authorization?.slice(7))]) t.notMatch(text, secret, 'no secret')
    return error as ProvisionError
  }
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const wrongKey = voximplantWebhook({ credentials: { ...KEY, private_key: other }, apiUrl: fake.base })
  t.match(await failed(wrongKey.show()), { call: 'Voximplant GetAccountInfo', status: 200, message: 'Voximplant GetAccountInfo: answered error 100 (Authorization failed): {"error":{"code":100,"msg":"Authorization failed"}}' },
    'an error answer with HTTP 200')
  t.equal(fake.calls.at(-1)?.jwt?.verified, false)

  fake.answer('/platform_api', { status: 401, body: '{"error":{"code":100,"msg":"Authorization failed"}}' })
  t.match(await failed(webhook.show()), { status: 401, message: 'Voximplant GetAccountInfo: HTTP 401: {"error":{"code":100,"msg":"Authorization failed"}}' }, 'and with an error status')
  fake.answer('/platform_api', { body: '{"result":0}' })
  t.equal((await failed(webhook.set({ url: URL_ }))).message, 'Voximplant SetAccountInfo: answered result 0: {"result":0}')
  fake.answer('/platform_api', { body: `{"error":"no","result":{"api_key":"${fake.apiKey}","callback_salt":"s3cr3t-salt"}}` })
  t.equal((await failed(webhook.show())).message, 'Voximplant GetAccountInfo: answered error undefined: {"error":"no","result":{"api_key":"[REDACTED]","callback_salt":"[REDACTED]"}}',
    'the api_key and the salt in an answer are cut out')
  fake.answer('/platform_api', { body: '{"error":null}' })
  t.match((await failed(webhook.show())).message, 'answered error undefined')
  fake.answer('/platform_api', { body: '{}' })
  t.equal((await failed(webhook.show())).message, 'Voximplant GetAccountInfo: answered result null: {}')
  fake.answer('/platform_api', { status: 502, contentType: 'text/html', body: '<h1>Bad Gateway</h1>' })
  t.equal((await failed(webhook.show())).message, 'Voximplant GetAccountInfo: HTTP 502: <h1>Bad Gateway</h1>')
  fake.answer('/platform_api', { body: 'null' })
  t.equal((await failed(webhook.show())).message, 'Voximplant GetAccountInfo: the answer is not a JSON object (HTTP 200): null')
  const salt = 'salt-in-the-error-00'
  fake.answer('/platform_api', { body: `{"error":{"code":9,"msg":"bad callback_salt ${salt}"}}` })
  t.equal((await failed(webhook.set({ url: URL_, salt }))).message, 'Voximplant SetAccountInfo: answered error 9 (bad callback_salt [REDACTED]): {"error":{"code":9,"msg":"bad callback_salt [REDACTED]"}}')

  fake.answer('/platform_api', { hang: true })
  t.match(await failed(client({ timeout: 150 }).show()), { status: undefined, message: 'Voximplant GetAccountInfo: no answer within 150 ms' })
  const port = await closedPort()
  t.match(await failed(voximplantWebhook({ credentials: KEY, apiUrl: `http://127.0.0.1:${port}` }).show()), { message: `Voximplant GetAccountInfo: cannot reach http://127.0.0.1:${port}: ECONNREFUSED` })
  t.match(await failed(voximplantWebhook({ credentials: KEY, apiUrl: 'http://127.0.0.1:1' }).show()), { message: 'Voximplant GetAccountInfo: cannot reach http://127.0.0.1:1: bad port' }, 'a URL fetch refuses')
})

t.test('https://api.voximplant.com/platform_api by default; a result that is no object shows nothing set', async t => {
  const urls: string[] = []
  const webhook = voximplantWebhook({
    credentials: KEY,
    fetch: async input => {
      urls.push(String(input))
      return new Response('{"result":true}')
    }
  })
  t.same(await webhook.show(), { accountId: 1234567, callbackUrl: undefined, saltSet: false })
  t.same(urls, ['https://api.voximplant.com/platform_api'])
})
