import t from 'tap'
import { appWith, EDIS_BODIES, FORM } from './helpers.js'

const FORBIDDEN = { status: 'error', message: 'The request does not come from an allowed address.', code: 'FST_PROVIDER_CALLBACKS_FORBIDDEN_SOURCE' }

t.test('allowedIps takes addresses and CIDR ranges, IPv4 and IPv6', async t => {
  const { app, events } = await appWith({ edis: { allowedIps: ['149.154.154.251', '10.0.0.0/8', '2001:db8::/32', ' 192.0.2.7 '] } })
  t.teardown(() => app.close())
  const from = (remoteAddress: string) => app.inject({ method: 'POST', url: '/callbacks/edis', remoteAddress, headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  for (const ip of ['149.154.154.251', '::ffff:149.154.154.251', '10.200.3.4', '2001:db8:1::5', '192.0.2.7']) {
    t.equal((await from(ip)).statusCode, 200, ip)
  }
  for (const ip of ['149.154.154.250', '11.0.0.1', '2001:db9::1', '::1', 'not-an-ip']) {
    const res = await from(ip)
    t.equal(res.statusCode, 403, ip)
    t.same(res.json(), FORBIDDEN)
  }
  t.equal(events.length, 5)
})

t.test('the source is checked before credentials and before the body', async t => {
  const { app, events } = await appWith({ edis: { allowedIps: ['149.154.154.251'], credentials: { username: 'u', password: 'p' } } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', remoteAddress: '203.0.113.9', headers: { 'content-type': 'application/json' }, payload: '{' })
  t.equal(res.statusCode, 403)
  const get = await app.inject({ method: 'GET', url: '/callbacks/edis?kvm=k', remoteAddress: '203.0.113.9' })
  t.equal(get.statusCode, 403)
  t.equal(events.length, 0)
})

t.test('X-Forwarded-For counts only when trustProxy says so', async t => {
  const headers = { 'content-type': FORM, 'x-forwarded-for': '149.154.154.251' }
  const direct = await appWith({ edis: { allowedIps: ['149.154.154.251'] } })
  t.teardown(() => direct.app.close())
  const spoofed = await direct.app.inject({ method: 'POST', url: '/callbacks/edis', remoteAddress: '203.0.113.9', headers, payload: EDIS_BODIES.canonical })
  t.equal(spoofed.statusCode, 403, 'without trustProxy the header is ignored')

  const proxied = await appWith({ edis: { allowedIps: ['149.154.154.251'] } }, { trustProxy: '10.0.0.1' })
  t.teardown(() => proxied.app.close())
  const viaProxy = await proxied.app.inject({ method: 'POST', url: '/callbacks/edis', remoteAddress: '10.0.0.1', headers, payload: EDIS_BODIES.canonical })
  t.equal(viaProxy.statusCode, 200, 'the trusted proxy\'s header names the source')
  const viaOther = await proxied.app.inject({ method: 'POST', url: '/callbacks/edis', remoteAddress: '203.0.113.9', headers, payload: EDIS_BODIES.canonical })
  t.equal(viaOther.statusCode, 403, 'an untrusted hop cannot claim the address')
  t.equal(direct.events.length + proxied.events.length, 1)
})
