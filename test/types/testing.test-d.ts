// Type tests of the test kit, fastify-provider-callbacks/testing (lib/testing.ts). index.test-d.ts
// already checks a min_balance item, a wrong balance, a wrong type name, voximplantBatch, the
// encoding option and deliver's events; here every type, every builder's arguments and deliver's
// options and answer.
import Fastify from 'fastify'
import providerCallbacks, { type AnyProviderCallbackEvent, type VoximplantCallback, type VoximplantCallbackType } from '../../lib/index.js'
import {
  type Delivered, type DeliverOptions, type EdisTrafficFields, type VoximplantTestSecret,
  deliver, edisTrafficBody, voximplantBatch, voximplantCallback, voximplantHash
} from '../../lib/testing.js'
import { type All, type Equal, expectType } from './assert.js'

const secret: VoximplantTestSecret = { apiKey: 'k', salt: 's' }
expectType<Equal<VoximplantTestSecret, { apiKey: string, salt?: string | undefined }>>()

// voximplantHash: md5(salt + account_id + api_key + callback_id), named arguments.
expectType<Equal<ReturnType<typeof voximplantHash>, string>>()
voximplantHash({ accountId: 1234567, apiKey: 'k', callbackId: 1 })
voximplantHash({ accountId: 1234567, apiKey: 'k', callbackId: 1, salt: 's' })
voximplantHash({ accountId: 1234567, apiKey: 'k', callbackId: 1, salt: process.env.VOX_SALT })
// @ts-expect-error the account id is a number
voximplantHash({ accountId: '1234567', apiKey: 'k', callbackId: 1 })
// @ts-expect-error the API key is needed
voximplantHash({ accountId: 1234567, callbackId: 1 })
// @ts-expect-error arguments are named, not positional
voximplantHash('s', 1234567, 'k', 1)

// voximplantCallback: an item of exactly its type's schema, for every type.
expectType<All<{ [T in VoximplantCallbackType]: Equal<ReturnType<typeof voximplantCallback<T>>, VoximplantCallback<T>> }>>()
const payment = voximplantCallback('card_payment', secret)
expectType<Equal<typeof payment.card_payment, { transaction_id: number, transaction_type: string, amount: number }>>()
expectType<Equal<typeof payment.type, 'card_payment'>>()
const sms = voximplantCallback('sms_inbound', { account_id: 42, callback_id: 7 }, secret)
expectType<Equal<typeof sms.sms_inbound.sms_inbound.sms_body, string | undefined>>()
// Fields are those of the type's item: any subset, a payload given whole, a hash to forge one.
voximplantCallback('card_payment', { card_payment: { transaction_id: 1, transaction_type: 'card_payment', amount: 5 } }, secret)
voximplantCallback('min_balance', { balance: 1.5, currency: 'EUR', hash: 'f'.repeat(32) }, secret)
voximplantCallback('account_is_frozen', { account_is_frozen: {} }, { apiKey: 'k' })
// @ts-expect-error a payload given replaces the example, so it is given whole
voximplantCallback('card_payment', { card_payment: { amount: 5 } }, secret)
// @ts-expect-error another type's payload is not a field of this one
voximplantCallback('min_balance', { card_payment: { transaction_id: 1, transaction_type: 'card_payment', amount: 5 } }, secret)
// @ts-expect-error the type comes from the first argument
voximplantCallback('min_balance', { type: 'card_payment' }, secret)
// @ts-expect-error ids are numbers
voximplantCallback('min_balance', { callback_id: '58210' }, secret)
// @ts-expect-error a field no item has
voximplantCallback('min_balance', { accountId: 42 }, secret)
// @ts-expect-error the secret is needed: fields alone do not sign
voximplantCallback('min_balance', { balance: 5 })
// @ts-expect-error a secret has an apiKey
voximplantCallback('min_balance', { salt: 's' })
// @ts-expect-error the salt is a string
voximplantCallback('min_balance', { apiKey: 'k', salt: 1 })
// @ts-expect-error an event name is not a type
voximplantCallback('card-payment', secret)
// @ts-expect-error nor is any string
voximplantCallback('brand_new' as string, secret)

// voximplantBatch: { callbacks } with the items' types kept.
const batch = voximplantBatch([payment, sms])
expectType<Equal<typeof batch, { callbacks: Array<VoximplantCallback<'card_payment'> | VoximplantCallback<'sms_inbound'>> }>>()
const tuple = voximplantBatch([payment, sms] as const)
expectType<Equal<typeof tuple.callbacks, readonly [VoximplantCallback<'card_payment'>, VoximplantCallback<'sms_inbound'>]>>()
// @ts-expect-error a batch is a list of items
voximplantBatch(payment)

// edisTrafficBody: the fields EDIS sends, and the credentials as fields; a string.
expectType<Equal<ReturnType<typeof edisTrafficBody>, string>>()
expectType<Equal<EdisTrafficFields['trigger_value'], number | 'demo' | undefined>>()
const fields: EdisTrafficFields = { kvm: 'kvm_1_2', details: 'Traffic usage reached 95%', trigger_value: 95, callback_user: 'hook', callback_pw: 'pw', extra: 'x', count: 1 }
edisTrafficBody()
edisTrafficBody(fields)
edisTrafficBody({ trigger_value: 'demo' })
edisTrafficBody(fields, { encoding: 'raw' })
edisTrafficBody({}, {})
// @ts-expect-error trigger_value is a number or 'demo'
edisTrafficBody({ trigger_value: 'eighty' })
// @ts-expect-error kvm is a string
edisTrafficBody({ kvm: 123456 })
// @ts-expect-error the password is a string
edisTrafficBody({ callback_pw: true })
// @ts-expect-error other fields are strings or numbers
edisTrafficBody({ extra: ['a', 'b'] })

// deliver: an EDIS body (a string) or a Voximplant batch, through inject; the answer typed.
const app = Fastify()
await app.register(providerCallbacks, { edis: {}, voximplant: { secret } })
expectType<Equal<ReturnType<typeof deliver>, Promise<Delivered>>>()
expectType<Equal<Delivered['statusCode'], number>>()
expectType<Equal<Delivered['events'], AnyProviderCallbackEvent[]>>()
expectType<Equal<Delivered['body']['status'], 'success' | 'error'>>()
expectType<Equal<Delivered['body']['message'], string>>()
expectType<Equal<Delivered['body']['code'], string | undefined>>()
expectType<Equal<Delivered['body']['errors'], Array<{ path: string, message: string }> | undefined>>()
expectType<Equal<DeliverOptions['method'], 'POST' | 'GET' | undefined>>()
const fromEdis = await deliver(app, edisTrafficBody(), { method: 'GET', basicAuth: { username: 'hook', password: 'pw' }, url: '/callbacks/edis', headers: { 'x-request-id': '1' } })
const fromVoximplant = await deliver(app, batch)
// The events narrow by name, as README's Events and docs/testing.md's example read them.
const [first] = fromEdis.events
if (first?.name === 'traffic-threshold') expectType<Equal<typeof first.payload.trigger_value, number | 'demo'>>()
if (first?.name === 'min-balance') expectType<Equal<typeof first.payload.min_balance.is_min_credit, boolean>>()
await deliver(app, { callbacks: [] })
await deliver(app, tuple)
for (const event of fromVoximplant.events) {
  if (event.provider === 'edis') expectType<Equal<typeof event.payload.kvm, string>>()
}
// @ts-expect-error the payload is an EDIS body or a { callbacks } batch
await deliver(app, { items: [payment] })
// @ts-expect-error nor a bare item
await deliver(app, payment)
// @ts-expect-error the providers POST (or GET, for EDIS)
await deliver(app, edisTrafficBody(), { method: 'PUT' })
// @ts-expect-error Basic auth needs a password
await deliver(app, edisTrafficBody(), { basicAuth: { username: 'hook' } })
// @ts-expect-error header values are strings
await deliver(app, edisTrafficBody(), { headers: { 'x-retry': 1 } })
// @ts-expect-error the app comes first
await deliver(edisTrafficBody())

export { fromEdis }
