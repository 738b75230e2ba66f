// The events' shapes: what a handler receives, by name. Types only, apart from events.ts (the
// handlers and their delivery), so that delivery/outcome.ts can name an event and events.ts its
// DeliveryRequest without an import circle.
import type { EdisTrafficThreshold } from './edis/schema.js'
import type { Kebab, VoximplantCallback, VoximplantCallbackType, VoximplantUnknownCallback } from './voximplant/schema.js'

export type ProviderName = 'edis' | 'voximplant'

/** What a handler receives. `payload` is the validated wire object, snake_case as the provider sent it. */
export interface ProviderCallbackEvent<Name extends string = string, Provider extends ProviderName = ProviderName, Payload = unknown, Known extends boolean = boolean> {
  readonly name: Name
  readonly provider: Provider
  /** The idempotency key: `edis:<kvm>:<trigger_value>` or `voximplant:<account_id>:<callback_id>`. */
  readonly id: string
  readonly payload: Payload
  readonly receivedAt: Date
  /** `true` for an event this version knows (typed by its name), `false` for a Voximplant type it does not. */
  readonly known: Known
}

export interface EdisEvents {
  'traffic-threshold': ProviderCallbackEvent<'traffic-threshold', 'edis', EdisTrafficThreshold, true>
}

/** One event per Voximplant callback type, named by its kebab-case: `min_balance` -> `min-balance`. */
export type VoximplantEvents = {
  [Type in VoximplantCallbackType as Kebab<Type>]: ProviderCallbackEvent<Kebab<Type>, 'voximplant', VoximplantCallback<Type>, true>
}

/** Every known event by name. */
export interface ProviderCallbackEvents extends EdisEvents, VoximplantEvents {}

export type ProviderCallbackEventName = keyof ProviderCallbackEvents

/**
 * The name of an event of a type this version does not know: at run time the kebab-case of its
 * `type`, like any other. Typed as a pattern no known name matches, so that comparing an onAny
 * event's `name` with a known name narrows it to exactly that event (a plain `string` here would
 * keep this member in every comparison, and the payload unknown). Read `payload.type` for the type.
 */
export type UnknownEventName = `${string}(a type this version does not know)`

/** A Voximplant callback of a type this version does not know (`known: false`): delivered to onAny listeners only. */
export type UnknownVoximplantEvent = ProviderCallbackEvent<UnknownEventName, 'voximplant', VoximplantUnknownCallback, false>

/** What an onAny listener receives: any known event, or a Voximplant callback of an unknown type. */
export type AnyProviderCallbackEvent = ProviderCallbackEvents[ProviderCallbackEventName] | UnknownVoximplantEvent
