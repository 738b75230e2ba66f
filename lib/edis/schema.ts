import { Type, type Static } from '@sinclair/typebox'

// What EDIS sends when a KVM VPS reaches its traffic threshold (research/edis.md §2.1). On the wire
// every value is a string; the route turns a decimal `trigger_value` into a number before these
// schemas check it. Fields EDIS may add later are kept (as strings), not rejected.
const trafficFields = {
  kvm: Type.String({ minLength: 1, description: 'The KVM VPS id, e.g. `kvm_123456_789012` (note: `kvm`, not `kvm_id`).' }),
  details: Type.Optional(Type.String({ description: 'Human-readable text, e.g. `Traffic usage reached 80%`.' })),
  trigger_value: Type.Union([
    Type.Integer({ minimum: 0, description: 'The traffic usage in percent that fired the hook.' }),
    Type.Literal('demo', { description: 'A test delivery, sent once when the hook is set with `trigger_value=demo`.' })
  ], { description: 'The traffic usage in percent that fired the hook, or `"demo"` for the test delivery EDIS sends when the hook is set with `trigger_value=demo`.' })
}

export const EdisTrafficThresholdSchema = Type.Object(trafficFields, {
  title: 'EdisTrafficThreshold',
  additionalProperties: Type.String()
})

/** The `traffic-threshold` event's payload: the fields EDIS sent, credentials removed. */
export type EdisTrafficThreshold = Static<typeof EdisTrafficThresholdSchema>

// EDIS does not document how it sends `callback_user`/`callback_pw`, so the route also takes them
// as fields: the documented request is the payload plus those two, which never reach an event.
export const EdisTrafficRequestSchema = Type.Object({
  ...trafficFields,
  callback_user: Type.Optional(Type.String({ description: 'The hook\'s `callback_user`, if EDIS sends it as a field rather than as HTTP Basic auth.' })),
  callback_pw: Type.Optional(Type.String({ description: 'The hook\'s `callback_pw`, if EDIS sends it as a field rather than as HTTP Basic auth.' }))
}, { title: 'EdisTrafficCallback', additionalProperties: Type.String() })

export type EdisTrafficRequest = Static<typeof EdisTrafficRequestSchema>
