import t from 'tap'
import { Value } from '@sinclair/typebox/value'
import { type ProviderCallbackEventName, VoximplantCallbackSchemas, voximplantPayloads } from '../lib/index.js'
import { appWith, postBatch, signedItem, VOX } from './helpers.js'

const types = Object.keys(voximplantPayloads) as Array<keyof typeof voximplantPayloads>

t.test('every known type, current and legacy, is modelled', async t => {
  t.equal(types.length, 45)
  for (const legacy of ['stagnant_account', 'balance_is_changed', 'plan_config', 'new_invoice', 'expired_callerid']) {
    t.ok(types.includes(legacy as never), legacy)
    t.equal(voximplantPayloads[legacy as keyof typeof voximplantPayloads].deprecated, true, `${legacy} is marked deprecated`)
  }
})

t.test('each type\'s documented example is valid for its schema', async t => {
  for (const type of types) {
    const example = voximplantPayloads[type].examples[0]
    t.ok(Value.Check(voximplantPayloads[type], example), type)
  }
})

t.test('a signed item of each type is delivered as its own typed event', async t => {
  const { app } = await appWith({ voximplant: { secret: { apiKey: VOX.apiKey, salt: VOX.salt } } })
  t.teardown(() => app.close())
  for (const [index, type] of types.entries()) {
    t.test(type, async t => {
      const name = type.replaceAll('_', '-') as ProviderCallbackEventName
      const received: unknown[] = []
      const handler = (event: { name: string, provider: string, id: string, payload: unknown }) => { received.push(event) }
      app.providerCallbacks.on(name, handler)
      t.teardown(() => { app.providerCallbacks.off(name, handler) })
      const item = signedItem(type, 1000 + index)
      t.ok(Value.Check(VoximplantCallbackSchemas[type], item), 'the item matches the exported schema')
      const res = await postBatch(app, [item])
      t.equal(res.statusCode, 200)
      t.match(received, [{ name, provider: 'voximplant', id: `voximplant:${VOX.accountId}:${1000 + index}`, payload: item }])
      t.equal(received.length, 1, 'one event, to its own listener only')
    })
  }
})
