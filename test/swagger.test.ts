import swagger from '@fastify/swagger'
import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks from '../lib/index.js'

t.test('@fastify/swagger documents the routes from their schemas', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, { openapi: { info: { title: 'test', version: '1.0.0' } } })
  await app.register(providerCallbacks, { edis: {} })
  await app.ready()
  const spec = app.swagger() as { paths: Record<string, Record<string, any>> }
  const path = spec.paths['/callbacks/edis']
  t.ok(path, 'the EDIS path is documented')
  const post = path?.post
  const body = post.requestBody.content['application/x-www-form-urlencoded'].schema
  t.same(body.required, ['kvm', 'trigger_value'])
  t.same(Object.keys(body.properties), ['kvm', 'details', 'trigger_value', 'callback_user', 'callback_pw'])
  t.same(body.properties.trigger_value.anyOf.map((s: { type: string }) => s.type), ['integer', 'string'])
  t.same(Object.keys(post.responses).sort(), ['200', '400', '401', '403', '409', '413', '415', '500', '503'])
  t.same(post.responses['200'].content['application/json'].schema.properties.status, { type: 'string', enum: ['success'] })
  t.same(post.responses['400'].content['application/json'].schema.required, ['status', 'message', 'code'])
  const get = path?.get
  t.same(get.parameters.map((p: { in: string, name: string }) => `${p.in}:${p.name}`), [
    'query:kvm', 'query:details', 'query:trigger_value', 'query:callback_user', 'query:callback_pw'
  ])
  t.equal(path?.head, undefined)
})

t.test('@fastify/swagger documents the Voximplant route: the batch, every type, every answer', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, { openapi: { info: { title: 'test', version: '1.0.0' } } })
  await app.register(providerCallbacks, { voximplant: { secret: { apiKey: 'k' }, maxItems: 50 } })
  await app.ready()
  const spec = app.swagger() as { paths: Record<string, Record<string, any>> }
  const post = spec.paths['/callbacks/voximplant']?.post
  const body = post.requestBody.content['application/json'].schema
  t.equal(body.properties.callbacks.maxItems, 50)
  const items = body.properties.callbacks.items.anyOf
  t.equal(items.length, 46, '45 known types and the fallback for unknown ones')
  const minBalance = items.find((i: { properties: { type: { enum?: string[] } } }) => i.properties.type.enum?.[0] === 'min_balance')
  t.same(minBalance.required, ['type', 'callback_id', 'account_id', 'hash', 'balance', 'min_balance'])
  t.same(minBalance.properties.min_balance.properties.is_repeated.type, 'boolean')
  t.same(minBalance.properties.min_balance.examples, [{ is_min_credit: false, is_repeated: false }])
  t.same(Object.keys(post.responses).sort(), ['200', '400', '401', '403', '409', '413', '415', '500', '503'])
  t.equal(spec.paths['/callbacks/edis'], undefined, 'EDIS is off')
})
