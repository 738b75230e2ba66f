import t from 'tap'
import { cardPaymentAndSms, singleMinBalance, unsaltedFrozen } from './fixtures-research.js'
import { appWith, postBatch, signedItem, SUCCESS_BODY, VOX } from './helpers.js'

const secret = { apiKey: VOX.apiKey, salt: VOX.salt }
const UNAUTHORIZED = { status: 'error', message: 'Missing or invalid callback credentials.', code: 'FST_PROVIDER_CALLBACKS_UNAUTHORIZED' }

t.test('the research\'s example bodies are accepted with their precomputed hashes', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  for (const body of [singleMinBalance, cardPaymentAndSms]) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/voximplant', payload: body })
    t.equal(res.statusCode, 200)
    t.same(res.json(), SUCCESS_BODY)
  }
  t.same(events.map(e => [e.name, e.provider, e.id]), [
    ['min-balance', 'voximplant', 'voximplant:1234567:58210'],
    ['card-payment', 'voximplant', 'voximplant:1234567:58211'],
    ['sms-inbound', 'voximplant', 'voximplant:1234567:58212']
  ])
  t.same(events.map(e => e.payload), [...singleMinBalance.callbacks, ...cardPaymentAndSms.callbacks], 'the payload is the whole item as sent')
  t.ok(events.every(e => e.receivedAt instanceof Date))
  t.ok(events.every(e => e.known), 'known types are known: true')
})

t.test('an unsalted account: the salt absent or empty, both readings', async t => {
  for (const unsalted of [{ apiKey: VOX.apiKey }, { apiKey: VOX.apiKey, salt: '' }]) {
    const { app, events } = await appWith({ voximplant: { secret: unsalted } })
    t.teardown(() => app.close())
    const res = await app.inject({ method: 'POST', url: '/callbacks/voximplant', payload: unsaltedFrozen })
    t.equal(res.statusCode, 200, `salt ${JSON.stringify(unsalted.salt)}`)
    t.same(events.map(e => e.name), ['account-is-frozen'])
    const salted = await app.inject({ method: 'POST', url: '/callbacks/voximplant', payload: singleMinBalance })
    t.equal(salted.statusCode, 401, 'a hash made with a salt does not verify without it')
  }
})

t.test('the hash may be upper-case hex', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const [item] = singleMinBalance.callbacks
  const res = await postBatch(app, [{ ...item, hash: item!.hash.toUpperCase() }])
  t.equal(res.statusCode, 200)
  t.equal(events.length, 1)
})

t.test('forged, unsigned, mis-keyed and mixed batches are refused whole, with nothing emitted', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const good = signedItem('min_balance', 1)
  const otherKey = { apiKey: 'another-accounts-key', salt: VOX.salt }
  const cases: Array<[string, unknown[]]> = [
    ['a wrong hash', [{ ...good, hash: 'f'.repeat(32) }]],
    ['no hash', [{ ...good, hash: undefined }]],
    ['an empty hash', [{ ...good, hash: '' }]],
    ['a hash that is not hex', [{ ...good, hash: 'z'.repeat(32) }]],
    ['a hash one character short', [{ ...good, hash: (good.hash as string).slice(1) }]],
    ['a hash of another callback id (replayed onto a new id)', [{ ...good, callback_id: 2 }]],
    ['a hash of another account', [{ ...good, account_id: VOX.accountId + 1 }]],
    ['signed with another API key', [signedItem('min_balance', 1, {}, otherKey)]],
    ['signed without the salt', [signedItem('min_balance', 1, {}, { apiKey: VOX.apiKey })]],
    ['one bad item among good ones', [signedItem('min_balance', 1), signedItem('card_payment', 2), { ...signedItem('card_payment', 3), hash: good.hash }]],
    ['an item that is not an object', [signedItem('min_balance', 1), 'min_balance']],
    ['an item without an account id', [{ ...good, account_id: undefined }]],
    ['a negative callback id', [{ ...good, callback_id: -1 }]],
    ['a fractional account id', [{ ...good, account_id: 1.5 }]]
  ]
  for (const [name, callbacks] of cases) {
    const res = await postBatch(app, callbacks)
    t.equal(res.statusCode, 401, name)
    t.same(res.json(), UNAUTHORIZED, name)
  }
  t.equal(events.length, 0)
})

t.test('a forged batch is a 401 even when it is also invalid: nothing unsigned is looked at', async t => {
  const { app } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const res = await postBatch(app, [{ ...signedItem('min_balance', 1, { min_balance: 'nonsense' }), hash: '0'.repeat(32) }])
  t.equal(res.statusCode, 401)
})

t.test('a signed item that breaks its type\'s schema is a 400 saying where', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const cases: Array<[string, Record<string, unknown>, Array<{ path: string, message: string }>]> = [
    ['a wrong payload field', signedItem('min_balance', 1, { min_balance: { is_min_credit: true, is_repeated: 'yes' } }), [{ path: '/callbacks/0/min_balance/is_repeated', message: 'Expected boolean' }]],
    ['a missing payload', signedItem('min_balance', 1, { min_balance: undefined }), [{ path: '/callbacks/0/min_balance', message: 'Expected required property' }]],
    ['a nested array item', signedItem('sip_registration_fail', 1, { sip_registration_fail: { sip_registrations: [{ sip_registration_id: 'x', status_code: '403' }] } }), [{ path: '/callbacks/0/sip_registration_fail/sip_registrations/0/sip_registration_id', message: 'Expected integer' }]],
    ['a balance that is not a number', signedItem('min_balance', 1, { balance: 'lots' }), [{ path: '/callbacks/0/balance', message: 'Expected number' }]],
    ['a type that is not a string', signedItem('min_balance', 1, { type: 7 }), [{ path: '/callbacks/0/type', message: 'Expected string' }]],
    ['an unknown type with a bad common field', signedItem('brand_new', 1, { balance: 'lots' }), [{ path: '/callbacks/0/balance', message: 'Expected number' }]]
  ]
  for (const [name, item, problems] of cases) {
    const res = await postBatch(app, [signedItem('card_payment', 9), item])
    t.equal(res.statusCode, 400, name)
    t.same(res.json(), {
      status: 'error',
      message: 'Invalid request parameters provided.',
      code: 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD',
      errors: problems.map(p => ({ ...p, path: p.path.replace('/callbacks/0', '/callbacks/1') }))
    }, name)
  }
  t.equal(events.length, 0, 'the good item before the bad one is not emitted either')
})

t.test('a body that is not a batch is a 400', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const cases: Array<[string, string, string, unknown]> = [
    ['no callbacks', '{}', 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD', [{ path: '/callbacks', message: 'Expected required property' }]],
    ['callbacks not an array', '{"callbacks":{}}', 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD', [{ path: '/callbacks', message: 'Expected array' }]],
    ['an array body', '[]', 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD', [{ path: '', message: 'Expected object' }]],
    ['truncated JSON', '{"callbacks":[', 'FST_PROVIDER_CALLBACKS_MALFORMED_BODY', undefined],
    ['an empty body', '', 'FST_PROVIDER_CALLBACKS_MALFORMED_BODY', undefined],
    ['a __proto__ key', '{"callbacks":[],"__proto__":{"polluted":true}}', 'FST_PROVIDER_CALLBACKS_MALFORMED_BODY', undefined],
    ['a constructor.prototype key', '{"callbacks":[],"constructor":{"prototype":{"polluted":true}}}', 'FST_PROVIDER_CALLBACKS_MALFORMED_BODY', undefined]
  ]
  for (const [name, payload, code, errors] of cases) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/voximplant', headers: { 'content-type': 'application/json' }, payload })
    t.equal(res.statusCode, 400, name)
    t.same(res.json(), { status: 'error', message: 'Invalid request parameters provided.', code, ...(errors === undefined ? {} : { errors }) }, name)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(events.length, 0)
})

t.test('content types: JSON (and text/plain, in case Voximplant labels it so); anything else is a 415', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const body = JSON.stringify(singleMinBalance)
  for (const type of ['application/json', 'application/json; charset=utf-8', 'text/plain']) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/voximplant', headers: { 'content-type': type }, payload: body })
    t.equal(res.statusCode, 200, type)
  }
  for (const type of ['application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/voximplant', headers: { 'content-type': type }, payload: body })
    t.equal(res.statusCode, 415, type)
    t.same(res.json(), { status: 'error', message: 'Unsupported content type; this route accepts application/json.', code: 'FST_PROVIDER_CALLBACKS_UNSUPPORTED_MEDIA_TYPE' })
  }
  t.equal(events.length, 3)
  const get = await app.inject({ method: 'GET', url: '/callbacks/voximplant' })
  t.equal(get.statusCode, 405, 'Voximplant only POSTs')
  t.equal(get.headers.allow, 'POST')
})

t.test('lenient where the wire format is unconfirmed', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())

  t.test('ids and money as decimal strings are read as numbers; the hash covers their text', async t => {
    const item = signedItem('card_payment', 77, { callback_id: '77', account_id: String(VOX.accountId), balance: '54.20', card_payment: { transaction_id: '987654321', transaction_type: 'card_payment', amount: '50.5' } })
    events.length = 0
    const res = await postBatch(app, [item])
    t.equal(res.statusCode, 200)
    const payload = events[0]?.payload as Record<string, unknown>
    t.same([payload.callback_id, payload.account_id, payload.balance, payload.card_payment], [77, VOX.accountId, 54.2, { transaction_id: 987654321, transaction_type: 'card_payment', amount: 50.5 }])
    t.equal(events[0]?.id, `voximplant:${VOX.accountId}:77`)
  })

  t.test('numbers written any other way stay text, and are refused', async t => {
    for (const balance of ['1e3', '0x10', ' 5', '05', '1.', '12345678901234567']) {
      const res = await postBatch(app, [signedItem('min_balance', 5, { balance })])
      t.equal(res.statusCode, 400, balance)
    }
    const padded = await postBatch(app, [signedItem('min_balance', 5, { callback_id: '005' })])
    t.equal(padded.statusCode, 401, 'an id with leading zeros is not the id the hash covers')
  })

  t.test('missing account names, email, language and currency are fine', async t => {
    events.length = 0
    const item = signedItem('min_balance', 6)
    for (const field of ['account_name', 'account_email', 'language_code', 'account_first_name', 'account_last_name', 'currency']) delete item[field]
    const res = await postBatch(app, [item])
    t.equal(res.statusCode, 200)
    t.equal(events.length, 1)
  })

  t.test('invoice money stays the string every SDK has', async t => {
    events.length = 0
    const res = await postBatch(app, [signedItem('invoice_received', 8)])
    t.equal(res.statusCode, 200)
    t.type((events[0]?.payload as { invoice_received: { amount: unknown } }).invoice_received.amount, 'string')
  })

  t.test('payloads nested once are normalised to the documented twice-nested shape', async t => {
    for (const type of ['sms_inbound', 'transcription_complete', 'phone_number_activation_status_changed', 'new_invoice']) {
      events.length = 0
      const documented = signedItem(type, 10)
      const once = { ...documented, [type]: (documented[type] as Record<string, unknown>)[type] }
      t.not(once[type], undefined)
      const res = await postBatch(app, [once, { ...documented, callback_id: 11, hash: signedItem(type, 11).hash }])
      t.equal(res.statusCode, 200, type)
      t.same(events.map(e => (e.payload as Record<string, unknown>)[type]), [documented[type], documented[type]], `${type}: one shape for both`)
    }
  })

  t.test('a singly nested payload is coerced like a doubly nested one', async t => {
    events.length = 0
    const documented = signedItem('transcription_complete', 12)
    const inner = (documented.transcription_complete as { transcription_complete: Record<string, unknown> }).transcription_complete
    const res = await postBatch(app, [{ ...documented, transcription_complete: { ...inner, call_session_history_id: String(inner.call_session_history_id) } }])
    t.equal(res.statusCode, 200)
    t.same(events[0]?.payload, documented)
  })
})

t.test('a type this version does not know is acknowledged and reaches onAny listeners', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const item = signedItem('quantum_teleport_completed', 20, { quantum_teleport_completed: { qubits: 3 }, extra_field: true })
  const res = await postBatch(app, [item, signedItem('min_balance', 21)])
  t.equal(res.statusCode, 200)
  t.same(events.map(e => [e.name, e.id, e.known]), [['quantum-teleport-completed', `voximplant:${VOX.accountId}:20`, false], ['min-balance', `voximplant:${VOX.accountId}:21`, true]],
    'an unknown type is told apart by known: false')
  t.same(events[0]?.payload, item, 'the item as sent')
  const signedUnknown = await postBatch(app, [{ ...item, hash: 'a'.repeat(32) }])
  t.equal(signedUnknown.statusCode, 401, 'unknown types are verified like any other')
})

t.test('a type whose kebab-case is a known event\'s name is refused: no event of that name carries an unchecked payload', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const named: string[] = []
  app.providerCallbacks.on('min-balance', event => { named.push(event.id) })
  app.providerCallbacks.on('traffic-threshold', event => { named.push(event.id) })
  // Found by the fuzz suite: these were named 'min-balance' and 'traffic-threshold' and ran their
  // handlers; then reached onAny under those names, where narrowing by name trusted their payload.
  for (const [i, type] of ['min-balance', 'account_is-frozen', 'traffic-threshold', 'traffic_threshold'].entries()) {
    const res = await postBatch(app, [signedItem('min_balance', 40 + i), signedItem(type, 30 + i)])
    t.equal(res.statusCode, 400, type)
    t.match(res.json(), { code: 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD', errors: [{ path: '/callbacks/1/type' }] }, type)
  }
  t.same(events, [], 'nothing emitted, the genuine item beside it neither')
  t.same(named, [])
  t.equal((await postBatch(app, [signedItem('min_balance', 33), signedItem('brand_new_type', 34)])).statusCode, 200)
  t.same(named, [`voximplant:${VOX.accountId}:33`], 'the real min_balance still runs')
  t.same(events.map(e => [e.name, e.known]), [['min-balance', true], ['brand-new-type', false]])
})

t.test('a batch is processed in order; a failing handler makes a 500 after the rest ran', async t => {
  const { app } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const order: number[] = []
  app.providerCallbacks.onAny(async event => {
    const id = (event.payload as { callback_id: number }).callback_id
    await new Promise(resolve => setTimeout(resolve, id === 1 ? 20 : 0))
    order.push(id)
    if (id === 2) throw new Error('handler failed on 2')
  })
  const res = await postBatch(app, [1, 2, 3].map(id => signedItem('card_payment', id)))
  t.equal(res.statusCode, 500)
  t.same(res.json(), { status: 'error', message: 'Internal server error occurred while processing the callback.', code: 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED' })
  t.same(order, [1, 2, 3], 'one after the other, and 3 still ran')
})

t.test('batch bounds: items and bytes, with defaults and options', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  const empty = await postBatch(app, [])
  t.equal(empty.statusCode, 200, 'an empty batch is acknowledged')
  const items = Array.from({ length: 1001 }, (_, i) => signedItem('account_is_frozen', i))
  const over = await postBatch(app, items)
  t.equal(over.statusCode, 413)
  t.same(over.json(), { status: 'error', message: 'The batch has more callbacks than the 1000 this route accepts.', code: 'FST_PROVIDER_CALLBACKS_BATCH_TOO_LARGE' })
  const atLimit = await postBatch(app, items.slice(0, 1000))
  t.equal(atLimit.statusCode, 200, '1000 items are accepted by default')
  t.equal(events.length, 1000)

  const small = await appWith({ voximplant: { secret, maxItems: 2, bodyLimit: 2000 } })
  t.teardown(() => small.app.close())
  t.equal((await postBatch(small.app, items.slice(0, 2))).statusCode, 200)
  t.equal((await postBatch(small.app, items.slice(0, 3))).statusCode, 413)
  const big = await postBatch(small.app, [signedItem('sms_inbound', 1, { sms_inbound: { sms_inbound: { sms_body: 'x'.repeat(2000) } } })])
  t.equal(big.statusCode, 413)
  t.equal(big.json().code, 'FST_PROVIDER_CALLBACKS_PAYLOAD_TOO_LARGE')
  const megabyte = await app.inject({ method: 'POST', url: '/callbacks/voximplant', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ callbacks: [], pad: 'x'.repeat(1024 * 1024) }) })
  t.equal(megabyte.statusCode, 413, 'the default body limit is 1 MiB')
})

t.test('allowedIps works for Voximplant too', async t => {
  const { app, events } = await appWith({ voximplant: { secret, allowedIps: ['185.164.148.0/22'] } })
  t.teardown(() => app.close())
  const body = JSON.stringify(singleMinBalance)
  const outside = await app.inject({ method: 'POST', url: '/callbacks/voximplant', remoteAddress: '203.0.113.5', headers: { 'content-type': 'application/json' }, payload: body })
  t.equal(outside.statusCode, 403)
  const inside = await app.inject({ method: 'POST', url: '/callbacks/voximplant', remoteAddress: '185.164.149.7', headers: { 'content-type': 'application/json' }, payload: body })
  t.equal(inside.statusCode, 200)
  t.equal(events.length, 1)
})

t.test('-0 is no id: an item whose callback_id or account_id is -0 is refused whole, never taken for 0', async t => {
  const { app, events } = await appWith({ voximplant: { secret } })
  t.teardown(() => app.close())
  // JSON.stringify writes -0 as 0, so the bodies are written by hand: -0 as a number and as text.
  const signedForZero = signedItem('min_balance', 0)
  const asSent = (field: string, text: string): string => JSON.stringify({ callbacks: [{ ...signedForZero, [field]: '@' }] }).replace('"@"', text)
  for (const [field, text] of [['callback_id', '-0'], ['callback_id', '"-0"'], ['account_id', '-0'], ['account_id', '"-0"']] as const) {
    const res = await app.inject({ method: 'POST', url: '/callbacks/voximplant', headers: { 'content-type': 'application/json' }, payload: asSent(field, text) })
    t.equal(res.statusCode, 401, `${field}: ${text}`)
  }
  t.equal(events.length, 0)
  const res = await app.inject({
    method: 'POST',
    url: '/callbacks/voximplant',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ callbacks: [signedItem('card_payment', 7, { card_payment: { transaction_id: '@', transaction_type: 'card', amount: 1 } })] }).replace('"@"', '-0')
  })
  t.equal(res.statusCode, 400, 'nor is -0 any other integer field')
  t.match(res.json().errors, [{ path: '/callbacks/0/card_payment/transaction_id' }])
  t.equal((await postBatch(app, [signedForZero])).statusCode, 200, 'the real 0 is an id')
})
