import formbody from '@fastify/formbody'
import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks from '../lib/index.js'
import { EDIS_BODIES, FORM } from './helpers.js'

t.test('the plugin\'s form parser does not leak into the host\'s routes', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(providerCallbacks, { edis: {} })
  app.post('/host', async request => ({ body: request.body }))
  const host = await app.inject({ method: 'POST', url: '/host', headers: { 'content-type': FORM }, payload: 'a=1' })
  t.equal(host.statusCode, 415, 'the host never registered a form parser, and still has none')
  const json = await app.inject({ method: 'POST', url: '/host', payload: { a: 1 } })
  t.same(json.json(), { body: { a: 1 } }, 'the host keeps its JSON parser')
  t.equal(app.hasContentTypeParser(FORM), false)
})

t.test('a host that registered @fastify/formbody keeps it, and the plugin keeps its own', async t => {
  for (const order of ['formbody first', 'plugin first']) {
    const app = Fastify()
    t.teardown(() => app.close())
    if (order === 'formbody first') await app.register(formbody)
    await app.register(providerCallbacks, { edis: {} })
    if (order === 'plugin first') await app.register(formbody)
    app.post('/host', async request => ({ body: request.body }))
    const host = await app.inject({ method: 'POST', url: '/host', headers: { 'content-type': FORM }, payload: 'a=1&a=2&b=x' })
    t.same(host.json(), { body: { a: ['1', '2'], b: 'x' } }, `${order}: the host's route parses with formbody's defaults`)
    const ours = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.unencoded })
    t.equal(ours.statusCode, 200, `${order}: the plugin's route parses the raw EDIS body`)
    const repeated = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: `${EDIS_BODIES.canonical}&kvm=x` })
    t.equal(repeated.json().code, 'FST_PROVIDER_CALLBACKS_REPEATED_FIELD', `${order}: with the plugin's rules`)
  }
})

t.test('the host\'s own error handler, validator and parsers do not change the plugin\'s answers', async t => {
  const app = Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: 'all' } } })
  t.teardown(() => app.close())
  app.setErrorHandler(async (_error, _request, reply) => reply.code(418).send('host'))
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) => done(null, body))
  app.setValidatorCompiler(() => () => ({ error: new Error('host validator') }))
  await app.register(providerCallbacks, { edis: {} })
  const good = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(good.statusCode, 200)
  const bad = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: 'kvm=k' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD')
  const text = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': 'text/plain' }, payload: 'kvm=k' })
  t.equal(text.statusCode, 415, 'the host\'s text parser is not the plugin\'s')
})

t.test('the decorator is visible to the host; the routes\' hooks are not', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(providerCallbacks, { edis: { allowedIps: ['192.0.2.1'] } })
  app.get('/host', async () => 'ok')
  t.equal(typeof app.providerCallbacks.on, 'function')
  const host = await app.inject({ method: 'GET', url: '/host', remoteAddress: '203.0.113.1' })
  t.equal(host.statusCode, 200, 'allowedIps guards only the EDIS route')
})
