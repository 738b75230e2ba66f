// Type tests of the event map: every name, every payload, on/off/onAny/offAny and the handlers
// option. index.test-d.ts already checks traffic-threshold, min-balance, sms-inbound and a few
// typos; this file checks the whole map. Checked by `tsc -p test/types` (npm run test:types).
import Fastify, { type FastifyRequest } from 'fastify'
import providerCallbacks, {
  type AnyProviderCallbackEvent, type EdisEvents, type EdisTrafficThreshold, type ProviderCallbackEvent,
  type ProviderCallbackEventName, type ProviderCallbackEvents, type ProviderCallbackHandler, type ProviderCallbackHandlers,
  type ProviderCallbacks, type ProviderCallbacksOptions, type ProviderName, type UnknownEventName, type UnknownVoximplantEvent, type VoximplantCallback,
  type VoximplantCallbackType, type VoximplantEvents, type VoximplantUnknownCallback,
  type BalanceIsChanged, type CardPaymentCallback, type HandlerContext, type InboundSmsCallback, type MinBalanceCallback, voximplantPayloads
} from '../../lib/index.js'
import type { Static } from '@sinclair/typebox'
import { type All, type Equal, expectType } from './assert.js'

const app = Fastify()
await app.register(providerCallbacks, { edis: {}, voximplant: { secret: { apiKey: 'k' } } })

// The names: exactly EDIS's one and one per Voximplant type of research/voximplant.md §2, current
// and legacy. A name that disappears or appears changes the public API, and fails here.
type VoximplantEventName =
  | 'min-balance' | 'account-is-frozen' | 'account-is-unfrozen' | 'activate-successful' | 'card-expired'
  | 'card-expires-in-month' | 'card-payment-failed' | 'js-fail' | 'reset-account-password-request' | 'certificate-expired'
  | 'card-payment' | 'robokassa-payment' | 'wire-transfer' | 'call-history-report' | 'transaction-history-report'
  | 'sip-registration-fail' | 'sip-registration-recovered' | 'renewed-subscriptions' | 'subscription-is-frozen'
  | 'subscription-is-detached' | 'unverified-subscription-detached' | 'expiring-callerid' | 'transcription-complete'
  | 'sms-inbound' | 'phone-number-activation-status-changed' | 'expiring-agreement' | 'expired-agreement'
  | 'restored-agreement-status' | 'next-charge-alert' | 'expired-certificates' | 'expiring-certificates'
  | 'account-document-status-updated' | 'account-document-uploaded' | 'account-document-verified'
  | 'regulation-address-uploaded' | 'regulation-address-verified' | 'regulation-address-documents-requested'
  | 'a2p-sms-activated' | 'invoice-received' | 'batch-task-cancelling-completed' | 'stagnant-account'
  | 'balance-is-changed' | 'plan-config' | 'new-invoice' | 'expired-callerid'
expectType<Equal<ProviderCallbackEventName, 'traffic-threshold' | VoximplantEventName>>()
expectType<Equal<keyof EdisEvents, 'traffic-threshold'>>()
expectType<Equal<keyof VoximplantEvents, VoximplantEventName>>()
expectType<Equal<keyof ProviderCallbackEvents, ProviderCallbackEventName>>()
expectType<Equal<ProviderName, 'edis' | 'voximplant'>>()

// Each Voximplant event is named by the kebab-case of its wire type, and carries exactly that
// type's item: ProviderCallbackEvent<name, 'voximplant', VoximplantCallback<type>, true>.
type Snake<S extends string> = S extends `${infer Head}-${infer Rest}` ? `${Head}_${Snake<Rest>}` : S
expectType<Equal<Snake<VoximplantEventName>, VoximplantCallbackType>>()
type TypeOf<Name extends VoximplantEventName> = Extract<Snake<Name>, VoximplantCallbackType>
expectType<All<{ [Name in VoximplantEventName]: Equal<ProviderCallbackEvents[Name], ProviderCallbackEvent<Name, 'voximplant', VoximplantCallback<TypeOf<Name>>, true>> }>>()
expectType<All<{ [Name in VoximplantEventName]: Equal<ProviderCallbackEvents[Name]['payload']['type'], TypeOf<Name>> }>>()
expectType<All<{ [Name in VoximplantEventName]: Equal<ProviderCallbackEvents[Name]['name'], Name> }>>()
expectType<Equal<ProviderCallbackEvents['traffic-threshold'], ProviderCallbackEvent<'traffic-threshold', 'edis', EdisTrafficThreshold, true>>>()
expectType<All<{ [Name in ProviderCallbackEventName]: Equal<ProviderCallbackEvents[Name]['known'], true> }>>()
// The check above can fail: one event's item is not another's.
expectType<Equal<Equal<ProviderCallbackEvents['card-payment'], ProviderCallbackEvent<'card-payment', 'voximplant', VoximplantCallback<'min_balance'>, true>>, false>>()

// A few payloads spelt out field by field, as a handler reads them.
type Common = {
  callback_id: number
  account_id: number
  hash: string
  account_name?: string
  account_email?: string
  language_code?: string
  account_first_name?: string
  account_last_name?: string
  balance: number
  currency?: string
}
app.providerCallbacks.on('card-payment', event => {
  expectType<Equal<typeof event.payload.card_payment, { transaction_id: number, transaction_type: string, amount: number }>>()
  expectType<Equal<Omit<typeof event.payload, 'type' | 'card_payment'>, Common>>()
  expectType<Equal<typeof event.payload.type, 'card_payment'>>()
  expectType<Equal<typeof event.id, string>>()
  expectType<Equal<typeof event.receivedAt, Date>>()
})
app.providerCallbacks.on('min-balance', event => {
  expectType<Equal<typeof event.payload.min_balance, { is_min_credit: boolean, is_repeated: boolean }>>()
  expectType<Equal<Omit<typeof event.payload, 'type' | 'min_balance'>, Common>>()
  // The event and its payload are what the provider sent: read-only for the handler.
  // @ts-expect-error the event is read-only
  event.payload = { ...event.payload }
  // @ts-expect-error the event is read-only
  event.name = 'min-balance'
})
app.providerCallbacks.on('account-is-frozen', event => {
  // A payload without fields may be missing from the item.
  expectType<Equal<typeof event.payload.account_is_frozen, {} | undefined>>()
})
app.providerCallbacks.on('transcription-complete', event => {
  // Nested twice, as documented (the route normalises a once-nested payload to this shape).
  expectType<Equal<keyof typeof event.payload.transcription_complete, 'transcription_complete'>>()
})
app.providerCallbacks.on('expired-callerid', event => {
  expectType<Equal<typeof event.payload.expired_callerid.callerids, string[]>>()
})
app.providerCallbacks.on('traffic-threshold', event => {
  expectType<Equal<typeof event.payload.trigger_value, number | 'demo'>>()
  expectType<Equal<typeof event.provider, 'edis'>>()
})

// A typo, the wire type instead of the event name, or another case: compile errors.
// @ts-expect-error a typo
app.providerCallbacks.on('min-balanse', () => {})
// @ts-expect-error the wire type is not the event name
app.providerCallbacks.on('card_payment', () => {})
// @ts-expect-error names are lower case
app.providerCallbacks.on('Traffic-Threshold', () => {})
// @ts-expect-error a typo in off()
app.providerCallbacks.off('traffic-treshold', () => {})
// @ts-expect-error an unknown type is for onAny only
app.providerCallbacks.on('brand-new-type', () => {})

// A handler written for one event does not fit another.
const onCardPayment: ProviderCallbackHandler<ProviderCallbackEvents['card-payment']> = () => {}
app.providerCallbacks.on('card-payment', onCardPayment).off('card-payment', onCardPayment)
// @ts-expect-error card-payment's handler is not min-balance's
app.providerCallbacks.on('min-balance', onCardPayment)
// @ts-expect-error nor can it be removed from another event
app.providerCallbacks.off('min-balance', onCardPayment)
// @ts-expect-error an onAny handler must take every event, known or not
app.providerCallbacks.onAny(onCardPayment)
// @ts-expect-error offAny takes what onAny takes
app.providerCallbacks.offAny(onCardPayment)

// onAny: every known event or a Voximplant callback of a type this version does not know.
expectType<Equal<AnyProviderCallbackEvent, ProviderCallbackEvents[ProviderCallbackEventName] | UnknownVoximplantEvent>>()
expectType<Equal<UnknownVoximplantEvent, ProviderCallbackEvent<UnknownEventName, 'voximplant', VoximplantUnknownCallback, false>>>()
// An unknown type's name is a string all the same, and no known name is one.
expectType<Equal<UnknownEventName extends string ? true : false, true>>()
expectType<Equal<Extract<ProviderCallbackEventName, UnknownEventName>, never>>()
expectType<Equal<ProviderCallbackHandler, (event: AnyProviderCallbackEvent, request: FastifyRequest, context: HandlerContext) => void | Promise<void>>>()
expectType<Equal<HandlerContext, { readonly signal: AbortSignal }>>()
app.providerCallbacks.onAny((event, request) => {
  expectType<Equal<typeof event, AnyProviderCallbackEvent>>()
  expectType<Equal<typeof request, FastifyRequest>>()
  expectType<Equal<typeof event.provider, ProviderName>>()
  expectType<Equal<typeof event.id, string>>()
  if (event.provider === 'edis') {
    // The provider narrows to EDIS's one event.
    expectType<Equal<typeof event, EdisEvents['traffic-threshold']>>()
  } else {
    expectType<Equal<typeof event, VoximplantEvents[VoximplantEventName] | UnknownVoximplantEvent>>()
    // Whatever the type, a Voximplant item has its common fields, typed.
    expectType<Equal<typeof event.payload.account_id, number>>()
    expectType<Equal<typeof event.payload.hash, string>>()
    expectType<Equal<typeof event.payload.type, string>>()
  }
  if (event.name === 'min-balance') {
    // The name alone narrows to the known event, its payload exact.
    expectType<Equal<typeof event, ProviderCallbackEvents['min-balance']>>()
    expectType<Equal<typeof event.payload.min_balance.is_repeated, boolean>>()
  }
  switch (event.name) {
    case 'traffic-threshold':
      expectType<Equal<typeof event.payload.trigger_value, number | 'demo'>>()
      break
    case 'sms-inbound':
      expectType<Equal<typeof event.payload.sms_inbound.sms_inbound.sms_body, string | undefined>>()
      break
  }
  if (!event.known) {
    // An unknown type's event is told apart by `known`; its name is still a string.
    expectType<Equal<typeof event, UnknownVoximplantEvent>>()
    expectType<Equal<typeof event.name extends string ? true : false, true>>()
    expectType<Equal<typeof event.payload.type, string>>()
    // Its payload is the item as sent: its common fields typed, the rest unknown.
    expectType<Equal<typeof event.payload['brand_new_type'], unknown>>()
  } else {
    expectType<Equal<typeof event, ProviderCallbackEvents[ProviderCallbackEventName]>>()
  }
})

// The decorator: on/off/onAny/offAny, chaining; nothing else is public.
expectType<Equal<typeof app.providerCallbacks, ProviderCallbacks>>()
const anyHandler: ProviderCallbackHandler = async () => {}
const chained = app.providerCallbacks.onAny(anyHandler).offAny(anyHandler).on('js-fail', () => {}).off('js-fail', () => {})
expectType<Equal<typeof chained, ProviderCallbacks>>()
// Handlers may be sync or async, and take the request or not.
app.providerCallbacks.on('wire-transfer', async (event, request) => { request.log.info({ id: event.id }) })
app.providerCallbacks.on('wire-transfer', () => undefined)
// @ts-expect-error a handler is a function
app.providerCallbacks.on('wire-transfer', 'handler')
// A handler's third argument is the context: its signal.
app.providerCallbacks.on('wire-transfer', (_event, _request, { signal }) => { expectType<Equal<typeof signal, AbortSignal>>() })
// @ts-expect-error a handler gets the event, the request and the context, nothing more
app.providerCallbacks.on('wire-transfer', (_event, _request, _context, _extra: string) => {})
// @ts-expect-error the context is not a string
app.providerCallbacks.on('wire-transfer', (_event, _request, _context: string) => {})
// @ts-expect-error not public: delivering is the routes' business
app.providerCallbacks.hasListeners('min-balance')

// The handlers option: one handler per event name, typed like on(name, handler).
expectType<All<{ [Name in ProviderCallbackEventName]: Equal<ProviderCallbackHandlers[Name], ProviderCallbackHandler<ProviderCallbackEvents[Name]> | undefined> }>>()
expectType<Equal<ProviderCallbacksOptions['handlers'], ProviderCallbackHandlers | undefined>>()
await app.register(providerCallbacks, {
  prefix: '/h',
  edis: {},
  voximplant: { secret: { apiKey: 'k' } },
  handlers: {
    'traffic-threshold': event => { expectType<Equal<typeof event.payload, EdisTrafficThreshold>>() },
    'card-payment': async (event, request) => {
      expectType<Equal<typeof event.payload.card_payment.amount, number>>()
      expectType<Equal<typeof request, FastifyRequest>>()
    },
    'sms-inbound': onSmsInbound
  }
})
function onSmsInbound (event: ProviderCallbackEvents['sms-inbound']): void {
  expectType<Equal<typeof event.payload, VoximplantCallback<'sms_inbound'>>>()
}
// @ts-expect-error card-payment's handler under min-balance
const misplaced: ProviderCallbackHandlers = { 'min-balance': onCardPayment }
// @ts-expect-error the handlers option takes known names only (onAny is for the others)
const unknownName: ProviderCallbackHandlers = { 'brand-new-type': () => {} }
// @ts-expect-error a handler is a function
const notAFunction: ProviderCallbackHandlers = { 'min-balance': true }

export { misplaced, unknownName, notAFunction, chained }

// A type per payload, named as the Voximplant SDKs name it, each the payload its event carries.
expectType<Equal<MinBalanceCallback, ProviderCallbackEvents['min-balance']['payload']['min_balance']>>()
expectType<Equal<MinBalanceCallback, { is_min_credit: boolean, is_repeated: boolean }>>()
expectType<Equal<InboundSmsCallback, VoximplantCallback<'sms_inbound'>['sms_inbound']>>()
expectType<Equal<InboundSmsCallback['sms_inbound']['sms_body'], string | undefined>>()
expectType<Equal<CardPaymentCallback, VoximplantCallback<'card_payment'>['card_payment']>>()
expectType<Equal<BalanceIsChanged, Static<typeof voximplantPayloads.balance_is_changed>>>()
// @ts-expect-error one payload is not another's
expectType<Equal<CardPaymentCallback, MinBalanceCallback>>()
