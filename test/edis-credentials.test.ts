import t from 'tap'
import { appWith, basic, CREDENTIALS, EDIS_BODIES, FORM } from './helpers.js'

const UNAUTHORIZED = { status: 'error', message: 'Missing or invalid callback credentials.', code: 'FST_PROVIDER_CALLBACKS_UNAUTHORIZED' }
const { username, password } = CREDENTIALS
const fields = (user: string, pw: string): string => new URLSearchParams({ callback_user: user, callback_pw: pw }).toString()

t.test('HTTP Basic credentials', async t => {
  const { app, events } = await appWith({ edis: { credentials: CREDENTIALS } })
  t.teardown(() => app.close())
  const post = (authorization?: string) => app.inject({
    method: 'POST',
    url: '/callbacks/edis',
    headers: { 'content-type': FORM, ...(authorization === undefined ? {} : { authorization }) },
    payload: EDIS_BODIES.canonical
  })

  t.equal((await post(basic(username, password))).statusCode, 200, 'the right pair is accepted')
  t.equal((await post(basic(username, password).replace('Basic', 'bAsIc'))).statusCode, 200, 'the scheme is case-insensitive')
  const wrong: Array<[string, string]> = [
    ['wrong password', basic(username, 'nope')],
    ['wrong user', basic('other', password)],
    ['password as a prefix', basic(username, password.slice(0, -1))],
    ['password with a suffix', basic(username, password + 'x')],
    ['no colon', 'Basic ' + Buffer.from(username).toString('base64')],
    ['bearer scheme', 'Bearer abc'],
    ['not base64', 'Basic !!!'],
    ['empty', '']
  ]
  for (const [name, header] of wrong) {
    const res = await post(header)
    t.equal(res.statusCode, 401, name)
    t.same(res.json(), UNAUTHORIZED, name)
  }
  const none = await post()
  t.equal(none.statusCode, 401, 'no credentials at all')
  t.equal(events.length, 2)
})

t.test('a wrong Basic header is refused before the body is read', async t => {
  const { app, events } = await appWith({ edis: { credentials: CREDENTIALS, bodyLimit: 10 } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, authorization: basic(username, 'nope') }, payload: EDIS_BODIES.canonical })
  t.equal(res.statusCode, 401, 'a 401, not the 413 reading the body would give')
  t.equal(events.length, 0)
})

t.test('credentials as callback_user / callback_pw fields, in the body or the GET query', async t => {
  const { app, events } = await appWith({ edis: { credentials: CREDENTIALS } })
  t.teardown(() => app.close())
  const post = (extra: string) => app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `${EDIS_BODIES.canonical}&${extra}` })
  const get = (extra: string) => app.inject({ method: 'GET', url: `/callbacks/edis?${EDIS_BODIES.canonical}&${extra}` })

  t.equal((await post(fields(username, password))).statusCode, 200)
  t.equal((await get(fields(username, password))).statusCode, 200)
  t.same(events.map(e => Object.keys(e.payload).sort()), [['details', 'kvm', 'trigger_value'], ['details', 'kvm', 'trigger_value']], 'credentials never reach the payload')

  for (const send of [post, get]) {
    const wrong: Array<[string, string]> = [
      ['wrong password', fields(username, 'nope')],
      ['no password', `callback_user=${username}`],
      ['no user', `callback_pw=${encodeURIComponent(password)}`],
      ['repeated password', `${fields(username, password)}&callback_pw=x`]
    ]
    for (const [name, extra] of wrong) {
      const res = await send(extra)
      t.equal(res.statusCode, 401, `${send === post ? 'POST' : 'GET'}: ${name}`)
      t.same(res.json(), UNAUTHORIZED)
    }
  }
  t.equal(events.length, 2)
})

t.test('a wrong Basic header is not rescued by right fields', async t => {
  const { app, events } = await appWith({ edis: { credentials: CREDENTIALS } })
  t.teardown(() => app.close())
  const res = await app.inject({
    method: 'POST',
    url: '/callbacks/edis',
    headers: { 'content-type': FORM, authorization: basic(username, 'nope') },
    payload: `${EDIS_BODIES.canonical}&${fields(username, password)}`
  })
  t.equal(res.statusCode, 401)
  t.equal(events.length, 0)
})

t.test('credentials are checked before the body is validated', async t => {
  const { app } = await appWith({ edis: { credentials: CREDENTIALS } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: 'trigger_value=x&trigger_value=y' })
  t.equal(res.statusCode, 401, 'an unauthenticated caller learns nothing about what the body got wrong')
  // Found by the fuzz suite: a POST with no body and no content type was a 400.
  const empty = await app.inject({ method: 'POST', url: '/callbacks/edis' })
  t.equal(empty.statusCode, 401, 'nor does one that sends no body at all')
  t.equal(empty.json().code, 'FST_PROVIDER_CALLBACKS_UNAUTHORIZED')
})

t.test('several credentials during a rotation: each one works', async t => {
  const next = { username: 'hook', password: 'the-new-one' }
  const { app, events } = await appWith({ edis: { credentials: [CREDENTIALS, next] } })
  t.teardown(() => app.close())
  for (const pair of [CREDENTIALS, next]) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, authorization: basic(pair.username, pair.password) }, payload: EDIS_BODIES.canonical })
    t.equal(res.statusCode, 200)
  }
  const mixed = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, authorization: basic('other', next.password) }, payload: EDIS_BODIES.canonical })
  t.equal(mixed.statusCode, 401, 'a user of one pair with the password of another is refused')
  t.equal(events.length, 2)
})

t.test('without configured credentials, credentials sent anyway are ignored and dropped', async t => {
  const { app, events } = await appWith({ edis: {} })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, authorization: basic('a', 'b') }, payload: `${EDIS_BODIES.canonical}&${fields('a', 'b')}` })
  t.equal(res.statusCode, 200)
  t.same(events[0]?.payload, { kvm: 'kvm_123456_789012', details: 'Traffic usage reached 80%', trigger_value: 80 })
})
