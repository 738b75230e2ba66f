import { Type, type Static, type TIntersect, type TLiteral, type TNot, type TObject, type TOptional, type TProperties, type TString } from '@sinclair/typebox'
import { voximplantPayloads, type VoximplantCallbackType } from './payloads.js'

// The fields every AccountCallback item has (research/voximplant.md §1.2). Only what identifies
// and signs the item is required: Voximplant's docs and SDKs disagree on the rest, and a genuine
// callback must not be refused for a missing name.
const commonFields = {
  callback_id: Type.Integer({ minimum: 0, description: 'The callback id, a sequence. A numeric string is accepted and read as the number.' }),
  account_id: Type.Integer({ minimum: 0, description: 'The account the callback is about. A numeric string is accepted and read as the number.' }),
  hash: Type.String({ description: 'md5(salt + account_id + api_key + callback_id) in hex; checked by the plugin.' }),
  account_name: Type.Optional(Type.String()),
  account_email: Type.Optional(Type.String()),
  language_code: Type.Optional(Type.String({ description: 'ISO 639-1, e.g. `en`.' })),
  account_first_name: Type.Optional(Type.String()),
  account_last_name: Type.Optional(Type.String()),
  balance: Type.Number({ description: 'The account balance, in `currency`. A numeric string is accepted and read as the number.' }),
  currency: Type.Optional(Type.String({ description: 'e.g. `USD`, `EUR`.' }))
}

type Payloads = typeof voximplantPayloads
type EmptyPayload<P extends TObject> = keyof P['properties'] extends never ? true : false
type ItemProperties<T extends VoximplantCallbackType> = { type: TLiteral<T> } & typeof commonFields &
  { [K in T]: EmptyPayload<Payloads[K]> extends true ? TOptional<Payloads[K]> : Payloads[K] }

/** The schema of an AccountCallback item of type T: the common fields and its payload under key T. */
export type VoximplantCallbackSchema<T extends VoximplantCallbackType> = TObject<ItemProperties<T>>

function itemSchema<T extends VoximplantCallbackType> (type: T): VoximplantCallbackSchema<T> {
  const payload = voximplantPayloads[type]
  // A payload with no fields tells nothing by its presence, so it may be missing.
  const empty = Object.keys(payload.properties).length === 0
  return Type.Object({
    type: Type.Literal(type),
    ...commonFields,
    [type]: empty ? Type.Optional(payload) : payload
  } as ItemProperties<T>, { title: `${payload.title} item`, description: payload.description, deprecated: payload.deprecated }) as VoximplantCallbackSchema<T>
}

/** The item schema of every known callback type, by type. */
export const VoximplantCallbackSchemas = Object.fromEntries(
  (Object.keys(voximplantPayloads) as VoximplantCallbackType[]).map(type => [type, itemSchema(type)])
) as unknown as { [T in VoximplantCallbackType]: VoximplantCallbackSchema<T> }

export type { VoximplantCallbackType }

/** An AccountCallback item of a known type, as a handler receives it. */
export type VoximplantCallback<T extends VoximplantCallbackType = VoximplantCallbackType> =
  T extends VoximplantCallbackType ? Static<VoximplantCallbackSchema<T>> : never

const knownTypes = Object.keys(voximplantPayloads) as VoximplantCallbackType[]

// Voximplant adds types: one this version does not know still passes, with its common fields
// checked, and reaches onAny listeners under its kebab-case name. Its type must not be a known one,
// or a known item that breaks its own schema would slip through here; nor one whose kebab-case is
// a known event's name (`min-balance`, `traffic_threshold`: no type Voximplant has), or narrowing
// an onAny event by that name would promise a payload nobody checked.
const lookalikes = [...knownTypes, 'traffic_threshold'].map(type => type.replaceAll('_', '[-_]'))
const unknownTypeFields = {
  type: Type.Intersect([
    Type.String({ minLength: 1, maxLength: 100 }),
    Type.Not(Type.String({ pattern: `^(?:${lookalikes.join('|')})$` }))
  ], { description: 'A type this version of the plugin does not know, and whose kebab-case is no known event\'s name.' }),
  ...commonFields
}
export const VoximplantUnknownCallbackSchema: TObject<{ type: TIntersect<[TString, TNot<TString>]> } & typeof commonFields> =
  Type.Object(unknownTypeFields, { title: 'Callback of another type', description: 'Delivered to onAny listeners as is.' })

/** An item of a type this version does not know: its common fields, and whatever else it has. */
export type VoximplantUnknownCallback = Static<typeof VoximplantUnknownCallbackSchema> & Record<string, unknown>

/** The common fields, for code that handles every type alike. */
export const VoximplantCommonFieldsSchema = Type.Object({ type: Type.String({ description: 'The callback type; its payload is under the key of that name, its event named by its kebab-case.' }), ...commonFields }, { title: 'AccountCallback common fields' })

/** `{ "callbacks": [ ... ] }`, with at most `maxItems` items. */
export function voximplantBatchSchema (maxItems: number): TObject<TProperties> {
  return Type.Object({
    callbacks: Type.Array(
      Type.Union([...knownTypes.map(type => VoximplantCallbackSchemas[type]), VoximplantUnknownCallbackSchema]),
      { maxItems, description: 'One or several callbacks, each signed on its own.' }
    )
  }, { title: 'AccountCallbacks' })
}

/** kebab-case of a type: the event name (`min_balance` -> `min-balance`). */
export type Kebab<S extends string> = S extends `${infer Head}_${infer Rest}` ? `${Head}-${Kebab<Rest>}` : S

export function kebab<S extends string> (type: S): Kebab<S> {
  return type.replaceAll('_', '-') as Kebab<S>
}

/** Every known type's event name. */
export const voximplantEventNames = knownTypes.map(kebab)

/** Types whose payload Voximplant documents nested twice (`sms_inbound.sms_inbound.*`) but may send once. */
export const nestedPayloadTypes = new Set<string>(knownTypes.filter(type => {
  const keys = Object.keys(voximplantPayloads[type].properties)
  return keys.length === 1 && keys[0] === type
}))
