import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks, { voximplantPayloads, type VoximplantCallbackType } from '../lib/index.js'
import { deliver, edisTrafficBody, voximplantBatch, voximplantCallback, voximplantHash } from '../lib/testing.js'
import { EDIS_BODIES } from './helpers.js'

const secret = { apiKey: 'eec36d6c-a0eb-46b5-a006-1c2b65343bac', salt: 'mySecretSalt' }
const credentials = { username: 'hook', password: 'hook-password' }

// An app that handles every event, as the app under test would.
async function app () {
  const instance = Fastify()
  await instance.register(providerCallbacks, { edis: { credentials }, voximplant: { secret } })
  instance.providerCallbacks.onAny(() => {})
  return instance
}

t.test('voximplantHash gives the research\'s precomputed hashes', async t => {
  t.equal(voximplantHash({ salt: 'mySecretSalt', accountId: 1234567, apiKey: secret.apiKey, callbackId: 58210 }), '50cf9f7ae7e7e4b186099fa3d8262c9b')
  t.equal(voximplantHash({ accountId: 1234567, apiKey: secret.apiKey, callbackId: 58213 }), '65ff51c8487b491c35665e0382b9de72', 'no salt')
  t.equal(voximplantHash({ salt: '', accountId: 1234567, apiKey: secret.apiKey, callbackId: 58213 }), '65ff51c8487b491c35665e0382b9de72', 'an empty salt')
})

t.test('the builders make deliveries the plugin accepts, for every type', async t => {
  const instance = await app()
  t.teardown(() => instance.close())
  const types = Object.keys(voximplantPayloads) as VoximplantCallbackType[]
  const items = types.map(type => voximplantCallback(type, secret))
  t.equal(new Set(items.map(i => i.callback_id)).size, types.length, 'each with a fresh callback id')
  const result = await deliver(instance, voximplantBatch(items))
  t.equal(result.statusCode, 200)
  t.same(result.body, { status: 'success', message: 'Callback received successfully.' })
  t.same(result.events.map(e => e.name), types.map(type => type.replaceAll('_', '-')))
  t.same(result.events.map(e => e.payload), items)
})

t.test('voximplantCallback: fields over realistic defaults, then the hash; a given hash forges', async t => {
  const instance = await app()
  t.teardown(() => instance.close())
  const item = voximplantCallback('min_balance', { account_id: 42, balance: 0.5, min_balance: { is_min_credit: true, is_repeated: true } }, secret)
  t.match(item, { type: 'min_balance', account_id: 42, balance: 0.5, currency: 'USD', min_balance: { is_min_credit: true, is_repeated: true } })
  t.equal(item.hash, voximplantHash({ ...secret, accountId: 42, callbackId: item.callback_id }))
  const accepted = await deliver(instance, voximplantBatch([item]))
  t.equal(accepted.statusCode, 200)
  t.equal(accepted.events[0]?.id, `voximplant:42:${item.callback_id}`)
  const forged = await deliver(instance, voximplantBatch([voximplantCallback('min_balance', { hash: '0'.repeat(32) }, secret)]))
  t.equal(forged.statusCode, 401)
  t.same(forged.events, [])
  const wrongKey = await deliver(instance, voximplantBatch([voximplantCallback('card_payment', { apiKey: 'another' })]))
  t.equal(wrongKey.statusCode, 401)
})

t.test('edisTrafficBody: form-encoded by default, raw as EDIS\'s own curl, with any fields', async t => {
  t.equal(edisTrafficBody(), EDIS_BODIES.canonical)
  t.equal(edisTrafficBody({ trigger_value: 100 }, { encoding: 'raw' }), EDIS_BODIES.unencoded)
  t.equal(edisTrafficBody({ kvm: 'kvm_234567_890123', trigger_value: 95 }), 'kvm=kvm_234567_890123&details=Traffic+usage+reached+95%25&trigger_value=95')
  t.equal(edisTrafficBody({ trigger_value: 'demo', details: undefined }), 'kvm=kvm_123456_789012&trigger_value=demo')
  t.equal(edisTrafficBody({ callback_user: 'u', callback_pw: 'p&q' }), 'kvm=kvm_123456_789012&details=Traffic+usage+reached+80%25&callback_user=u&callback_pw=p%26q&trigger_value=80')
})

t.test('deliver: an EDIS body by POST or GET, with credentials as Basic auth or fields', async t => {
  const instance = await app()
  t.teardown(() => instance.close())
  const basic = await deliver(instance, edisTrafficBody({ trigger_value: 100 }, { encoding: 'raw' }), { basicAuth: credentials })
  t.equal(basic.statusCode, 200)
  t.same(basic.events.map(e => e.payload), [{ kvm: 'kvm_123456_789012', details: 'Traffic usage reached 100%', trigger_value: 100 }])
  const get = await deliver(instance, edisTrafficBody({ trigger_value: 90, callback_user: credentials.username, callback_pw: credentials.password }), { method: 'GET' })
  t.equal(get.statusCode, 200)
  t.equal(get.events[0]?.id, 'edis:kvm_123456_789012:90')
  const refused = await deliver(instance, edisTrafficBody({ trigger_value: 95 }))
  t.equal(refused.statusCode, 401)
  t.equal(refused.body.code, 'FST_PROVIDER_CALLBACKS_UNAUTHORIZED')
  const elsewhere = await deliver(instance, edisTrafficBody(), { url: '/nowhere', headers: { 'x-test': '1' } })
  t.equal(elsewhere.statusCode, 404)
})

t.test('deliver records only its own delivery\'s events, and leaves no listener behind', async t => {
  const instance = await app()
  t.teardown(() => instance.close())
  const first = await deliver(instance, voximplantBatch([voximplantCallback('min_balance', secret)]))
  const second = await deliver(instance, voximplantBatch([voximplantCallback('card_payment', secret)]))
  t.same([first.events.map(e => e.name), second.events.map(e => e.name)], [['min-balance'], ['card-payment']])
  let after = 0
  instance.providerCallbacks.onAny(() => { after++ })
  await deliver(instance, voximplantBatch([voximplantCallback('min_balance', secret)]))
  t.equal(after, 1)
})

t.test('deliver watches, it does not listen: an event the app has no handler for is left alone, as in production', async t => {
  const instance = Fastify()
  t.teardown(() => instance.close())
  await instance.register(providerCallbacks, { voximplant: { secret } })
  const handled: string[] = []
  instance.providerCallbacks.on('card-payment', event => { handled.push(event.id) })
  const minBalance = voximplantCallback('min_balance', secret)
  const cardPayment = voximplantCallback('card_payment', secret)
  const result = await deliver(instance, voximplantBatch([minBalance, cardPayment]))
  t.equal(result.statusCode, 200)
  t.same(result.events.map(e => e.name), ['card-payment'], 'only what the app\'s handlers got')
  t.same(handled, [`voximplant:1234567:${cardPayment.callback_id}`])
  // Nobody listened to min-balance, so nothing was claimed or recorded: a handler added now gets it.
  instance.providerCallbacks.on('min-balance', event => { handled.push(event.id) })
  const again = await deliver(instance, voximplantBatch([minBalance, cardPayment]))
  t.same(again.events.map(e => e.name), ['min-balance'], 'card-payment is done; min-balance was never claimed')
  t.same(handled.slice(1), [`voximplant:1234567:${minBalance.callback_id}`])
})

t.test('callback ids are fresh in every process, even two started in the same second', async t => {
  // A second instance of the kit's module, as another process would load it.
  const other = await import(`../lib/testing.js?instance=${Date.now()}`) as typeof import('../lib/testing.js')
  const ours = voximplantCallback('min_balance', secret).callback_id
  const theirs = other.voximplantCallback('min_balance', secret).callback_id
  t.not(ours, theirs)
  t.ok(Math.abs(ours - theirs) > 1_000_000, 'far apart, so that runs of many ids do not meet either')
  t.ok(Number.isSafeInteger(ours) && Number.isSafeInteger(theirs), 'exact numbers')
})
