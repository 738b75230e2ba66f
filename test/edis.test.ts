import t from 'tap'
import { appWith, EDIS_BODIES, FORM, SUCCESS_BODY } from './helpers.js'

t.test('POST delivers a traffic-threshold event for each of the research\'s example bodies', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const expected = [
    { kvm: 'kvm_123456_789012', details: 'Traffic usage reached 80%', trigger_value: 80 },
    { kvm: 'kvm_234567_890123', details: 'Traffic usage reached 95%', trigger_value: 95 },
    { kvm: 'kvm_123456_789012', details: 'Traffic usage reached 100%', trigger_value: 100 }
  ]
  for (const body of Object.values(EDIS_BODIES)) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: body })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    t.same(res.json(), SUCCESS_BODY)
  }
  t.same(events.map(e => e.payload), expected)
  t.same(events.map(e => e.id), ['edis:kvm_123456_789012:80', 'edis:kvm_234567_890123:95', 'edis:kvm_123456_789012:100'])
  for (const event of events) {
    t.equal(event.name, 'traffic-threshold')
    t.equal(event.provider, 'edis')
    t.ok(event.receivedAt instanceof Date)
    t.equal(event.known, true)
  }
})

t.test('the form body may carry a charset parameter', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': `${FORM}; charset=utf-8` }, payload: EDIS_BODIES.canonical })
  t.equal(res.statusCode, 200)
  t.equal(events.length, 1)
})

t.test('GET with the fields in the query delivers the same event', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: `/callbacks/edis?${EDIS_BODIES.canonical}` })
  t.equal(res.statusCode, 200)
  t.same(res.json(), SUCCESS_BODY)
  t.same(events.map(e => [e.id, e.payload]), [['edis:kvm_123456_789012:80', { kvm: 'kvm_123456_789012', details: 'Traffic usage reached 80%', trigger_value: 80 }]])
})

t.test('GET parses its query as leniently as a POST body, bare % included', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/callbacks/edis?kvm=k1&details=50%+then+100%25&trigger_value=100' })
  t.equal(res.statusCode, 200)
  t.equal((events[0]?.payload as { details: string }).details, '50% then 100%')
})

t.test('HEAD is not a way to deliver an event', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'HEAD', url: `/callbacks/edis?${EDIS_BODIES.canonical}` })
  t.equal(res.statusCode, 405)
  t.equal(res.headers.allow, 'GET, POST')
  t.equal(events.length, 0)
})

t.test('trigger_value=demo (a test delivery) is accepted as the string demo', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  for (const details of ['Traffic usage reached demo%', undefined]) {
    const body = new URLSearchParams({ kvm: 'kvm_1', trigger_value: 'demo', ...(details === undefined ? {} : { details }) })
    const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: body.toString() })
    t.equal(res.statusCode, 200)
  }
  t.same(events.map(e => e.payload), [
    { kvm: 'kvm_1', trigger_value: 'demo', details: 'Traffic usage reached demo%' },
    { kvm: 'kvm_1', trigger_value: 'demo' }
  ])
  t.same(events.map(e => e.id), ['edis:kvm_1:demo', 'edis:kvm_1:demo'])
})

t.test('fields EDIS may add later reach the payload as strings', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `${EDIS_BODIES.canonical}&hook_id=123&__proto__=x` })
  t.equal(res.statusCode, 200)
  const payload = events[0]?.payload as Record<string, unknown>
  t.equal(payload.hook_id, '123')
  t.equal(Object.getPrototypeOf(payload), Object.prototype, 'a __proto__ field does not replace the prototype')
  t.equal(({} as Record<string, unknown>).x, undefined)
})

t.test('an invalid body is a 400 that says what was wrong, and no event', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const cases: Array<[string, string, Array<{ path: string, message: string }>]> = [
    ['missing kvm', 'details=x&trigger_value=80', [{ path: '/kvm', message: 'Expected required property' }]],
    ['empty kvm', 'kvm=&trigger_value=80', [{ path: '/kvm', message: 'Expected string length greater or equal to 1' }]],
    ['missing trigger_value', 'kvm=k', [{ path: '/trigger_value', message: 'Expected required property' }]],
    ['non-numeric trigger_value', 'kvm=k&trigger_value=eighty', [{ path: '/trigger_value', message: 'Expected integer or "demo"' }]],
    ['fractional trigger_value', 'kvm=k&trigger_value=80.5', [{ path: '/trigger_value', message: 'Expected integer or "demo"' }]],
    ['negative trigger_value', 'kvm=k&trigger_value=-1', [{ path: '/trigger_value', message: 'Expected integer or "demo"' }]],
    ['padded trigger_value', 'kvm=k&trigger_value=+80', [{ path: '/trigger_value', message: 'Expected integer or "demo"' }]],
    ['huge trigger_value', 'kvm=k&trigger_value=99999999999999999999', [{ path: '/trigger_value', message: 'Expected integer or "demo"' }]],
    ['empty body', '', [{ path: '/kvm', message: 'Expected required property' }, { path: '/trigger_value', message: 'Expected required property' }]]
  ]
  for (const [name, payload, problems] of cases) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload })
    t.equal(res.statusCode, 400, name)
    t.same(res.json(), { status: 'error', message: 'Invalid request parameters provided.', code: 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD', errors: problems }, name)
  }
  const get = await app.inject({ method: 'GET', url: '/callbacks/edis?kvm=k' })
  t.equal(get.statusCode, 400)
  t.equal(get.json().code, 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD')
  const noQuery = await app.inject({ method: 'GET', url: '/callbacks/edis' })
  t.equal(noQuery.statusCode, 400)
  t.same(noQuery.json().errors.map((p: { path: string }) => p.path), ['/kvm', '/trigger_value'])
  t.equal(events.length, 0)
})

t.test('a POST without a body is a 400', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis' })
  t.equal(res.statusCode, 400)
  t.same(res.json(), { status: 'error', message: 'Invalid request parameters provided.', code: 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD', errors: [{ path: '', message: 'Expected object' }] })
  t.equal(events.length, 0)
})

t.test('a repeated field is refused by name, in the body and in the query', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const expected = {
    status: 'error',
    message: 'Invalid request parameters provided.',
    code: 'FST_PROVIDER_CALLBACKS_REPEATED_FIELD',
    errors: [{ path: '/trigger_value', message: 'Expected the field once, got it repeated' }, { path: '/a~1b', message: 'Expected the field once, got it repeated' }]
  }
  const body = 'kvm=k&trigger_value=80&trigger_value=90&a/b=1&a/b=2&a/b=3'
  const post = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: body })
  t.equal(post.statusCode, 400)
  t.same(post.json(), expected)
  const get = await app.inject({ method: 'GET', url: `/callbacks/edis?${body}` })
  t.equal(get.statusCode, 400)
  t.same(get.json(), expected)
  t.equal(events.length, 0)
})

t.test('a body with more fields than any callback has is refused as a whole', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const fields = Array.from({ length: 65 }, (_, i) => `f${i}=1`).join('&')
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `kvm=k&trigger_value=1&${fields}` })
  t.equal(res.statusCode, 400)
  t.same(res.json().errors, [{ path: '', message: 'must have at most 64 fields' }])
  t.equal(events.length, 0)
})

t.test('over the body limit is a 413; the limit is an option', async t => {
  const { app, events } = await appWith({ edis: { bodyLimit: 100 } })
  t.teardown(() => app.close())
  const small = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(small.statusCode, 200)
  const big = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `${EDIS_BODIES.canonical}&pad=${'x'.repeat(100)}` })
  t.equal(big.statusCode, 413)
  t.same(big.json(), { status: 'error', message: 'The request body is too large.', code: 'FST_PROVIDER_CALLBACKS_PAYLOAD_TOO_LARGE' })
  t.equal(events.length, 1)

  const defaults = await appWith({ edis: {} })
  t.teardown(() => defaults.app.close())
  const overDefault = await defaults.app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `${EDIS_BODIES.canonical}&pad=${'x'.repeat(16 * 1024)}` })
  t.equal(overDefault.statusCode, 413, 'the default limit is 16 KiB')
})

t.test('any content type but a form is a 415', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  for (const type of ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': type }, payload: '{"kvm":"k","trigger_value":80}' })
    t.equal(res.statusCode, 415, type)
    t.same(res.json(), {
      status: 'error',
      message: 'Unsupported content type; this route accepts application/x-www-form-urlencoded.',
      code: 'FST_PROVIDER_CALLBACKS_UNSUPPORTED_MEDIA_TYPE'
    })
  }
  t.equal(events.length, 0)
})

t.test('a handler that throws gives a 500, so EDIS can redeliver', async t => {
  const { app } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  let calls = 0
  app.providerCallbacks.on('traffic-threshold', async () => {
    calls++
    if (calls === 1) throw new Error('database down')
  })
  const first = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(first.statusCode, 500)
  t.same(first.json(), { status: 'error', message: 'Internal server error occurred while processing the callback.', code: 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED' })
  t.notMatch(first.body, 'database down', 'the handler\'s error stays in the log')
  const redelivered = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(redelivered.statusCode, 200)
  t.equal(calls, 2)
})

t.test('a synchronous throw in a handler is a 500 too', async t => {
  const { app } = await appWith({ edis: {}, handlers: { 'traffic-threshold': () => { throw new Error('sync') } } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(res.statusCode, 500)
})

t.test('a callback nobody listens to is still acknowledged', async t => {
  const { default: Fastify } = await import('fastify')
  const { default: providerCallbacks } = await import('../lib/index.js')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(providerCallbacks, { edis: {} })
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(res.statusCode, 200)
})

t.test('prefix and path place the routes', async t => {
  const { app, events } = await appWith({ prefix: '/hooks/v1', edis: { path: '/edis-traffic' } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/hooks/v1/edis-traffic', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(res.statusCode, 200)
  const old = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(old.statusCode, 404)
  t.equal(events.length, 1)

  const root = await appWith({ prefix: '', edis: {} })
  t.teardown(() => root.app.close())
  const atRoot = await root.app.inject({ method: 'POST', url: '/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(atRoot.statusCode, 200)
})

t.test('trigger_value=-0 is refused, never read as 0 (another event\'s id)', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  for (const [method, url, payload] of [['POST', '/callbacks/edis', 'kvm=kvm_1&trigger_value=-0'], ['GET', '/callbacks/edis?kvm=kvm_1&trigger_value=-0', undefined]] as const) {
    const res = await app.inject({ method, url, ...(payload === undefined ? {} : { headers: { 'content-type': FORM }, payload }) })
    t.equal(res.statusCode, 400, method)
    t.match(res.json(), { code: 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD', errors: [{ path: '/trigger_value' }] }, method)
  }
  t.equal(events.length, 0)
})
