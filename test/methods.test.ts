import { connect, type AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks from '../lib/index.js'
import { appWith, CREDENTIALS } from './helpers.js'

const NOT_ALLOWED = {
  status: 'error',
  message: 'This method is not allowed here; the Allow header lists those that are.',
  code: 'FST_PROVIDER_CALLBACKS_METHOD_NOT_ALLOWED'
}

const ROUTES = [
  { url: '/callbacks/edis', allow: 'GET, POST', others: ['PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE'] },
  { url: '/callbacks/voximplant', allow: 'POST', others: ['GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE'] }
]

// What used to reach the host's not-found route, which parsed the body and answered 413, 415 or
// 400 in Fastify's shape: every such body now gets the same 405.
const BODIES = [
  { 'content-type': 'application/json', payload: '{"callbacks":[' },
  { 'content-type': 'application/xml', payload: '<a/>' },
  { 'content-type': 'application/x-www-form-urlencoded', payload: 'kvm=k&trigger_value=80&callback_pw=' + CREDENTIALS.password },
  { 'content-type': 'application/json', payload: 'x'.repeat(2 * 1024 * 1024) }
]

t.test('another method on a route\'s path is a 405 with Allow, in the plugin\'s shape, whatever the body', async t => {
  const { app, events } = await appWith({ edis: { credentials: CREDENTIALS }, voximplant: { secret: { apiKey: 'k' } } })
  t.teardown(() => app.close())
  for (const { url, allow, others } of ROUTES) {
    for (const method of others) {
      const bodies = method === 'HEAD' || method === 'TRACE' ? [undefined] : BODIES
      for (const body of bodies) {
        const res = await app.inject({ method: method as 'PUT', url, ...(body === undefined ? {} : { headers: { 'content-type': body['content-type'] }, payload: body.payload }) })
        const what = `${method} ${url} ${body?.['content-type'] ?? ''}`
        t.equal(res.statusCode, 405, what)
        t.equal(res.headers.allow, allow, what)
        t.equal(res.headers.connection, 'close', `${what}: the unread body is not waited for`)
        if (method !== 'HEAD') t.same(res.json(), NOT_ALLOWED, what)
        t.notMatch(res.body, CREDENTIALS.password, `${what}: nothing echoed`)
      }
    }
  }
  t.equal(events.length, 0, 'nothing emitted')
})

t.test('the 405 is answered before the body is sent: a real socket declaring 1 GB gets it at once', async t => {
  const { app } = await appWith({ voximplant: { secret: { apiKey: 'k' } } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      // Headers only: the body never comes, so an answer proves none was waited for.
      socket.write('PUT /callbacks/voximplant HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n')
    })
    const chunks: Buffer[] = []
    socket.on('data', chunk => chunks.push(chunk))
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    socket.on('error', reject)
  })
  t.match(answer, /^HTTP\/1\.1 405 Method Not Allowed\r\n/)
  t.match(answer, /\r\nallow: POST\r\n/i)
  t.match(answer, /"code":"FST_PROVIDER_CALLBACKS_METHOD_NOT_ALLOWED"/)
})

t.test('the routes\' own methods and other paths are untouched', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(providerCallbacks, { edis: {}, voximplant: false })
  app.put('/mine', async () => ({ mine: true }))
  t.equal((await app.inject({ method: 'PUT', url: '/mine' })).json().mine, true, 'the host\'s routes answer as before')
  t.equal((await app.inject({ method: 'PUT', url: '/callbacks/elsewhere' })).statusCode, 404, 'an unknown path is still the host\'s 404')
  t.equal((await app.inject({ method: 'PUT', url: '/callbacks/voximplant' })).statusCode, 404, 'a provider that is off has no path')
  t.equal((await app.inject({ method: 'GET', url: '/callbacks/edis?kvm=kvm_1&trigger_value=80' })).statusCode, 200)
})
