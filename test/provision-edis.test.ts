// edisHooks against a fake EDIS Management API over real HTTP: the exact documented requests, the
// AUTH session per KVM and its renewal, and every kind of failure, secrets cut out.
import t, { type Test } from 'tap'
import { edisHooks, ProvisionError, type EdisHooksOptions } from '../lib/index.js'
import { closedPort, FakeEdis } from './fake-providers.js'
import { fakeClock } from './helpers.js'

const ACCOUNT = { email: 'ops@example.com', password: 'p+w&=rd secret', kvms: ['kvm_123456_789012', 'kvm_234567_890123'] }
const [KVM, OTHER] = ACCOUNT.kvms as [string, string]
const CALLBACK = { username: 'hook', password: 'callback-pw-9f2' }
const URL_ = 'https://example.com/callbacks/edis'

async function setup (t: Test, account = ACCOUNT, options: Partial<EdisHooksOptions> = {}) {
  const fake = await new FakeEdis(account).start(t)
  const hooks = edisHooks({ email: account.email, password: account.password, sessionUrl: fake.base, apiUrl: fake.apiUrl, ...options })
  return { fake, hooks }
}

t.test('set: one AUTH, then hooks/set on the KVM\'s own api_host with the documented fields', async t => {
  const { fake, hooks } = await setup(t)
  const hook = await hooks.set({ kvm: KVM, url: URL_, trigger: 80, credentials: CALLBACK })
  t.same(hook, { kvm: KVM, hookId: 100 }, 'the id a string on the wire, an integer here')

  const [auth] = fake.to('/kvm/v2/get/auth')
  t.equal(auth?.headers['content-type'], 'application/x-www-form-urlencoded')
  t.equal(auth?.body.toString(), 'email=ops%40example.com&pw=p%2Bw%26%3Drd+secret', 'the password form-encoded (+, & and = safe)')

  const [set] = fake.to('/host/123456.edisglobal.com/kvm/v2/hooks/set')
  t.equal(set?.headers['content-type'], 'application/x-www-form-urlencoded')
  const fields = Object.fromEntries(new URLSearchParams(set?.body.toString()))
  const session = [...fake.sessions].find(([, s]) => s.kvm === KVM)
  t.same(Object.keys(fields), ['signature', 'kvm_id', 'valid_until', 'callback_method', 'callback_user', 'callback_pw', 'type', 'trigger_value', 'callback_url'],
    'the fields of the docs\' curl, in its order')
  t.same(fields, {
    signature: session?.[0],
    kvm_id: KVM,
    valid_until: String(session?.[1].validUntil),
    callback_method: 'post',
    callback_user: 'hook',
    callback_pw: CALLBACK.password,
    type: 'traffic',
    trigger_value: '80',
    callback_url: URL_
  })
  t.same([...fake.hooks.values()].map(h => [h.id, h.kvm, h.fields.trigger_value]), [[100, KVM, '80']], 'EDIS has the hook')
})

t.test('several triggers and KVMs: one hook each, one AUTH for all, calls at once included', async t => {
  const { fake, hooks } = await setup(t)
  t.same(await hooks.kvms(), ACCOUNT.kvms, 'all KVMs of the account')
  const set = await Promise.all([80, 90, 100].flatMap(trigger => [KVM, OTHER].map(async kvm => await hooks.set({ kvm, url: URL_, trigger, method: 'get' }))))
  t.equal(new Set(set.map(hook => hook.hookId)).size, 6, 'six hooks, six ids')
  t.equal(fake.to('/kvm/v2/get/auth').length, 1, 'one AUTH session serves every KVM')
  t.same([...fake.hooks.values()].map(h => `${h.kvm}:${h.fields.trigger_value}`).sort(),
    [`${KVM}:100`, `${KVM}:80`, `${KVM}:90`, `${OTHER}:100`, `${OTHER}:80`, `${OTHER}:90`])
  t.ok(fake.requests.filter(r => r.path.includes('/hooks/set')).every(r => r.path.startsWith(`/host/${FakeEdis.apiHost(Object.fromEntries(new URLSearchParams(r.body.toString())).kvm_id!)}/`)),
    'each KVM\'s calls go to its own api_host')
  t.same([...fake.hooks.values()].map(h => [h.fields.callback_method, h.fields.callback_user]), Array(6).fill(['get', undefined]), 'no credentials fields without credentials')
})

t.test('an empty or missing email or password is refused at once, as the CLI refuses it: EDIS is not called', async t => {
  const fake = await new FakeEdis(ACCOUNT).start(t)
  const cases: Array<[Partial<EdisHooksOptions> | undefined, string]> = [
    [{ email: '', password: '' }, 'edisHooks email must be a non-empty string, got an empty string'],
    [{ email: ACCOUNT.email, password: '' }, 'edisHooks password must be a non-empty string, got an empty string'],
    [{ email: ACCOUNT.email }, 'edisHooks password must be a non-empty string, got undefined'],
    [{ email: ['ops@example.com'] as never, password: ACCOUNT.password }, 'edisHooks email must be a non-empty string, got object'],
    [undefined, 'edisHooks needs options: { email, password }']
  ]
  for (const [options, message] of cases) {
    // Used at once, as a caller would: before the fix the refusal came only from EDIS, after a call.
    await t.rejects(async () => {
      const hooks = edisHooks(options === undefined ? options as never : { sessionUrl: fake.base, apiUrl: fake.apiUrl, ...options } as EdisHooksOptions)
      await hooks.set({ kvm: KVM, url: URL_, trigger: 80 })
    }, { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: `fastify-provider-callbacks: ${message}` }, message)
  }
  t.same(fake.requests, [], 'EDIS received no request')
})

t.test('remove: hooks/del with the integer id; the hook is gone', async t => {
  const { fake, hooks } = await setup(t)
  const hook = await hooks.set({ kvm: OTHER, url: URL_, trigger: 90 })
  await hooks.remove(hook)
  t.same([...fake.hooks.keys()], [])
  const [del] = fake.fields('/host/234567.edisglobal.com/kvm/v2/hooks/del')
  t.same(Object.keys(del ?? {}), ['signature', 'kvm_id', 'valid_until', 'id'])
  t.equal(del?.id, String(hook.hookId))
  await t.rejects(hooks.remove(hook), { name: 'ProvisionError', message: `EDIS hooks/del (${OTHER}): answered status "error": {"status":"error","message":"no webhook with ID ${hook.hookId}"}` },
    'removing it again is EDIS\'s error, named')
})

t.test('demo: trigger_value=demo; the hook id when EDIS gives one, undefined when not', async t => {
  const { fake, hooks } = await setup(t)
  t.same(await hooks.demo({ kvm: KVM, url: URL_, credentials: CALLBACK }), { kvm: KVM, hookId: 100 })
  t.equal(fake.fields('/host/123456.edisglobal.com/kvm/v2/hooks/set')[0]?.trigger_value, 'demo')
  fake.hookIdAs = 'none'
  t.same(await hooks.demo({ kvm: KVM, url: URL_ }), { kvm: KVM, hookId: undefined })
  fake.hookIdAs = 'integer'
  t.same(await hooks.set({ kvm: KVM, url: URL_, trigger: 50 }), { kvm: KVM, hookId: 102 }, 'an integer hook_id is taken too')
  fake.hookIdAs = 'none'
  await t.rejects(hooks.set({ kvm: KVM, url: URL_, trigger: 60 }), { message: `EDIS hooks/set (${KVM}): the answer has no hook_id, so the hook cannot be removed through the API` })
  await t.rejects(hooks.set({ kvm: KVM, url: URL_, trigger: 8.5 }), new TypeError('trigger must be a percentage (an integer), got 8.5'))
})

t.test('the session is renewed a minute before valid_until, and serves until then', async t => {
  const { fake, hooks } = await setup(t)
  const clock = fakeClock(t, ['Date'])
  await hooks.set({ kvm: KVM, url: URL_, trigger: 80 })
  clock.tick((fake.ttl - 61) * 1000)
  await hooks.set({ kvm: KVM, url: URL_, trigger: 90 })
  t.equal(fake.to('/kvm/v2/get/auth').length, 1, 'still valid: no new AUTH')
  clock.tick(2000)
  await Promise.all([hooks.set({ kvm: KVM, url: URL_, trigger: 100 }), hooks.set({ kvm: OTHER, url: URL_, trigger: 100 })])
  t.equal(fake.to('/kvm/v2/get/auth').length, 2, 'within a minute of valid_until: one new AUTH, for both calls')
  t.equal(fake.hooks.size, 4)
})

t.test('valid_until as an ISO date is read as one; one that reads as no time serves a single call', async t => {
  const { fake, hooks } = await setup(t)
  const clock = fakeClock(t, ['Date'])
  fake.validUntil = now => new Date(now + 600_000).toISOString()
  await hooks.set({ kvm: KVM, url: URL_, trigger: 80 })
  await hooks.set({ kvm: KVM, url: URL_, trigger: 90 })
  t.equal(fake.to('/kvm/v2/get/auth').length, 1)
  clock.tick(541_000)
  await hooks.set({ kvm: KVM, url: URL_, trigger: 100 })
  t.equal(fake.to('/kvm/v2/get/auth').length, 2)
  const first = [...fake.sessions.values()].find(session => session.kvm === KVM)?.validUntil
  t.match(first, /^\d{4}-\d\d-\d\dT/)
  t.equal(fake.fields('/host/123456.edisglobal.com/kvm/v2/hooks/set')[0]?.valid_until, first, 'echoed as AUTH gave it')

  fake.validUntil = () => 'soon'
  const before = fake.to('/kvm/v2/get/auth').length
  clock.tick(600_000)
  await hooks.set({ kvm: KVM, url: URL_, trigger: 70 })
  await hooks.set({ kvm: KVM, url: URL_, trigger: 60 })
  t.equal(fake.to('/kvm/v2/get/auth').length, before + 2, 'a new AUTH for each call')
})

t.test('a KVM the session does not have: AUTH asked again (a new VPS), then an error naming the known ones', async t => {
  const { fake, hooks } = await setup(t)
  await hooks.set({ kvm: KVM, url: URL_, trigger: 80 })
  const error = await hooks.set({ kvm: 'kvm_9_9', url: URL_, trigger: 80 }).catch((e: unknown) => e)
  t.match(error, { name: 'ProvisionError', call: 'EDIS AUTH', message: `EDIS AUTH: the account has no session for KVM kvm_9_9 (it has ${KVM}, ${OTHER})` })
  t.equal(fake.to('/kvm/v2/get/auth').length, 2)

  const { hooks: empty } = await setup(t, { ...ACCOUNT, kvms: [] })
  t.same(await empty.kvms(), [], 'an account without KVMs (data: [])')
  await t.rejects(empty.set({ kvm: KVM, url: URL_, trigger: 80 }), { message: `EDIS AUTH: the account has no session for KVM ${KVM} (it has none)` })
})

t.test('failures: a clear message naming the call, never a secret; a failed AUTH is not kept', async t => {
  const { fake, hooks } = await setup(t)
  const secrets = [ACCOUNT.password, encodeURIComponent(ACCOUNT.password), CALLBACK.password]
  const failed = async (promise: Promise<unknown>): Promise<ProvisionError> => {
    const error = await promise.then(() => undefined, (e: unknown) => e)
    t.type(error, ProvisionError)
    for (const secret of [...secrets, ...fake.sessions.keys()]) t.notMatch((error as Error).message, secret, 'no secret in the message')
    return error as ProvisionError
  }

  const wrong = edisHooks({ email: ACCOUNT.email, password: 'guess&guess', sessionUrl: fake.base, apiUrl: fake.apiUrl })
  const login = await failed(wrong.set({ kvm: KVM, url: URL_, trigger: 80 }))
  t.equal(login.message, 'EDIS AUTH: answered status "error": {"status":"error","message":"Login failed for ops@example.com with pw [REDACTED]"}')
  t.equal(login.call, 'EDIS AUTH')
  t.equal(login.status, 200)

  fake.answer('/kvm/v2/get/auth', { status: 503, contentType: 'text/html', body: '<html>\n<body>Service Unavailable</body>\n</html>' })
  t.match(await failed(hooks.kvms()), { status: 503, message: 'EDIS AUTH: HTTP 503: <html> <body>Service Unavailable</body> </html>' })
  t.same(await hooks.kvms(), ACCOUNT.kvms, 'the next call asks AUTH again')

  const setPath = '/host/123456.edisglobal.com/kvm/v2/hooks/set'
  fake.answer(setPath, { body: 'OK' })
  t.equal((await failed(hooks.set({ kvm: KVM, url: URL_, trigger: 80, credentials: CALLBACK }))).message, `EDIS hooks/set (${KVM}): the answer is not a JSON object (HTTP 200): OK`)
  fake.answer(setPath, { body: '' })
  t.equal((await failed(hooks.set({ kvm: KVM, url: URL_, trigger: 80 }))).message, `EDIS hooks/set (${KVM}): the answer is not a JSON object (HTTP 200): (an empty body)`)
  fake.answer(setPath, { body: '["success"]' })
  t.match((await failed(hooks.set({ kvm: KVM, url: URL_, trigger: 80 }))).message, 'not a JSON object')
  const signature = [...fake.sessions].find(([, s]) => s.kvm === KVM)?.[0] ?? ''
  fake.answer(setPath, { status: 400, body: JSON.stringify({ status: 'error', error: `bad callback_pw ${CALLBACK.password} for ${signature}`, callback_pw: 'x' }) })
  t.equal((await failed(hooks.set({ kvm: KVM, url: URL_, trigger: 80, credentials: CALLBACK }))).message,
    `EDIS hooks/set (${KVM}): HTTP 400: {"status":"error","error":"bad callback_pw [REDACTED] for [REDACTED]","callback_pw":"[REDACTED]"}`,
    'the session signature and the hook password are cut out, by value and by field name')
  fake.answer(setPath, { body: `{"result":"ok","long":"${'x'.repeat(400)}"}` })
  t.match((await failed(hooks.set({ kvm: KVM, url: URL_, trigger: 80 }))).message, /^EDIS hooks\/set \(kvm_123456_789012\): answered status null: \{"result":"ok","long":"x+\.\.\. \(\d+ characters\)$/, 'a long answer cut short')
  t.equal(fake.hooks.size, 0, 'nothing was created')

  fake.answer(setPath, { hang: true })
  const slow = edisHooks({ email: ACCOUNT.email, password: ACCOUNT.password, sessionUrl: fake.base, apiUrl: fake.apiUrl, timeout: 150 })
  t.match(await failed(slow.set({ kvm: KVM, url: URL_, trigger: 80 })), { status: undefined, message: `EDIS hooks/set (${KVM}): no answer within 150 ms` })

  const port = await closedPort()
  const unreachable = edisHooks({ email: ACCOUNT.email, password: ACCOUNT.password, sessionUrl: `http://127.0.0.1:${port}/` })
  const refused = await failed(unreachable.kvms())
  t.equal(refused.message, `EDIS AUTH: cannot reach http://127.0.0.1:${port}: ECONNREFUSED`)
  t.match(refused.cause, { message: 'connect ECONNREFUSED 127.0.0.1:' + port })
})

t.test('a secret the answer echoes across the 300 characters shown is cut out whole: not even its first characters', async t => {
  const { fake, hooks } = await setup(t)
  const setPath = '/host/123456.edisglobal.com/kvm/v2/hooks/set'
  // Its spaces too: the answer's whitespace is folded for the message, which must not unmake the secret.
  const spaced = { username: 'hook', password: 'spaced  out\tpw-4c1' }
  const noPrefix = (message: string, secret: string, what: string): void => {
    const leaked = Array.from({ length: secret.length - 3 }, (_, i) => secret.slice(0, i + 4)).filter(prefix => message.includes(prefix))
    t.same(leaked, [], `${what}: no 4 first characters of the secret or more`)
  }
  for (const [credentials, at] of [[CALLBACK, 296], [CALLBACK, 300 - CALLBACK.password.length + 2], [spaced, 290]] as const) {
    for (const json of [false, true]) {
      // The message shows the answer from its first character: as text as it came, as JSON re-stringified.
      const text = json
        ? JSON.stringify({ e: `${'x'.repeat(at - 6)}${credentials.password}${'y'.repeat(100)}` })
        : `${'x'.repeat(at)}${credentials.password}${'y'.repeat(100)}`
      fake.answer(setPath, { status: 400, contentType: json ? 'application/json' : 'text/plain', body: text })
      const error = await hooks.set({ kvm: KVM, url: URL_, trigger: 80, credentials }).then(() => undefined, (e: unknown) => e as ProvisionError)
      t.match(error, { name: 'ProvisionError', status: 400, message: /^EDIS hooks\/set \(kvm_123456_789012\): HTTP 400: / })
      const message = error?.message ?? ''
      t.match(message, /\(\d+ characters\)$/, 'cut short')
      noPrefix(message, credentials.password, `${JSON.stringify(credentials.password)} at ${at}${json ? ', JSON' : ''}`)
    }
  }
})

t.test('the documented hosts by default: session.edisglobal.com, then https://<api_host>; a fetch of one\'s own', async t => {
  const urls: string[] = []
  const fetch: typeof globalThis.fetch = async input => {
    urls.push(String(input))
    const body = urls.length === 1
      ? { status: 'success', data: { [KVM]: { api_host: '123456.edisglobal.com', kvm_id: KVM, valid_until: String(Math.floor(Date.now() / 1000) + 3600), signature: 's' }, broken: { api_host: 1 } } }
      : { status: 'success', hook_id: '7' }
    return new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } })
  }
  const hooks = edisHooks({ email: ACCOUNT.email, password: ACCOUNT.password, fetch })
  t.same(await hooks.kvms(), [KVM], 'an entry without a session\'s fields is left out')
  t.same(await hooks.set({ kvm: KVM, url: URL_, trigger: 80 }), { kvm: KVM, hookId: 7 })
  await hooks.set({ kvm: KVM, url: URL_, trigger: 90 })
  t.same(urls, ['https://session.edisglobal.com/kvm/v2/get/auth', 'https://123456.edisglobal.com/kvm/v2/hooks/set', 'https://123456.edisglobal.com/kvm/v2/hooks/set'],
    'valid_until as a string of digits is a Unix time: no second AUTH')

  const failing = edisHooks({ email: ACCOUNT.email, password: ACCOUNT.password, fetch: async () => { throw new Error(`boom ${ACCOUNT.password}`) } })
  await t.rejects(failing.kvms(), { message: 'EDIS AUTH: cannot reach https://session.edisglobal.com: boom [REDACTED]' })
  const nulls = edisHooks({ email: ACCOUNT.email, password: ACCOUNT.password, fetch: async () => new Response('{"status":"success","data":null}') })
  t.same(await nulls.kvms(), [], 'data null: no KVMs')
})
