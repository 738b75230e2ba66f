import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks, * as api from '../lib/index.js'
import type { ProviderCallbacksOptions } from '../lib/index.js'

t.test('the plugin is the default and the named export, with fastify-plugin metadata', async t => {
  t.equal(api.providerCallbacks, providerCallbacks)
  const meta = (providerCallbacks as unknown as Record<symbol, unknown>)[Symbol.for('plugin-meta')]
  t.same(meta, { fastify: '5.x', name: 'fastify-provider-callbacks' })
  t.equal((providerCallbacks as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')], true)
})

t.test('bad options fail at registration with a clear message', async t => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['no provider', {}, /no provider is enabled/],
    ['edis false', { edis: false }, /no provider is enabled/],
    ['edis not an object', { edis: 'yes' }, /edis must be an object or false/],
    ['edis null', { edis: null }, /edis must be an object or false/],
    ['prefix without slash', { prefix: 'callbacks', edis: {} }, /prefix must be '' or a path starting with '\/', got "callbacks"/],
    ['prefix not a string', { prefix: 3, edis: {} }, /prefix must be/],
    ['empty path', { edis: { path: '' } }, /edis.path must be a non-empty path starting with '\/', got ""/],
    ['bare slash path', { edis: { path: '/' } }, /edis.path must be a non-empty path/],
    ['path without slash', { edis: { path: 'edis' } }, /edis.path must be/],
    ['empty credentials array', { edis: { credentials: [] } }, /edis.credentials must not be an empty array/],
    ['missing password', { edis: { credentials: { username: 'u' } } }, /edis.credentials\[0\].password must be a non-empty string/],
    ['empty password (an unset env var)', { edis: { credentials: { username: 'u', password: '' } } }, /edis.credentials\[0\].password must be a non-empty string/],
    ['second pair without user', { edis: { credentials: [{ username: 'u', password: 'p' }, { password: 'p' }] } }, /edis.credentials\[1\].username/],
    ['null pair', { edis: { credentials: [null] } }, /edis.credentials\[0\].username/],
    ['malformed IP', { edis: { allowedIps: ['149.154.154.2511'] } }, /edis.allowedIps: "149.154.154.2511" is not an IP address or CIDR range/],
    ['prefix too long', { edis: { allowedIps: ['10.0.0.0/33'] } }, /"10.0.0.0\/33" is not an IP address or CIDR range/],
    ['IPv6 prefix too long', { edis: { allowedIps: ['2001:db8::/129'] } }, /is not an IP address or CIDR range/],
    ['prefix not a number', { edis: { allowedIps: ['10.0.0.0/x'] } }, /is not an IP address or CIDR range/],
    ['two slashes', { edis: { allowedIps: ['10.0.0.0/8/8'] } }, /is not an IP address or CIDR range/],
    ['not a string', { edis: { allowedIps: [42] } }, /42 is not an IP address/],
    ['empty allowedIps', { edis: { allowedIps: [] } }, /edis.allowedIps must be a non-empty array/],
    ['allowedIps not an array', { edis: { allowedIps: '10.0.0.1' } }, /edis.allowedIps must be a non-empty array/],
    ['bad bodyLimit', { edis: { bodyLimit: 0 } }, /edis.bodyLimit must be a positive integer/],
    ['handlers not an object', { edis: {}, handlers: 'x' }, /handlers must be an object/],
    ['unknown event name', { edis: {}, handlers: { 'traffic-treshold': () => {} } }, /unknown event name 'traffic-treshold'; known names: traffic-threshold/],
    ['handler not a function', { edis: {}, handlers: { 'traffic-threshold': 'x' } }, /the handler for 'traffic-threshold' must be a function/],
    // Node would run these timers after 1 ms: every claim refreshed, every handler timed out at once.
    ['handlerTimeout past Node\'s longest timer', { edis: {}, handlerTimeout: 2 ** 31 }, /handlerTimeout must be at most 2147483647 ms/],
    ['claimTtl past Node\'s longest timer', { edis: {}, idempotency: { claimTtl: 2 ** 31 } }, /idempotency.claimTtl must be at most 2147483647 ms/]
  ]
  for (const [name, options, message] of cases) {
    const app = Fastify()
    const error = await app.register(providerCallbacks, options as ProviderCallbacksOptions).ready().then(() => null, (e: Error) => e)
    t.match(error, { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message }, name)
    t.type(error, TypeError, name)
    await app.close()
  }
})

t.test('an EDIS route with neither credentials nor allowedIps works, with one warning', async t => {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  for (const edis of [{}, { credentials: { username: 'u', password: 'p' } }, { allowedIps: ['10.0.0.1'] }]) {
    const app = Fastify({ logger: { level: 'warn', stream } })
    await app.register(providerCallbacks, { edis })
    await app.ready()
    await app.close()
  }
  const warnings = lines.filter(l => l.level === 40)
  t.equal(warnings.length, 1, 'only the unprotected registration warns, once')
  t.match(warnings[0]?.msg, /neither credentials nor allowedIps/)
})

t.test('registering twice in one scope is refused by the decorator', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(providerCallbacks, { edis: {} })
  app.register(providerCallbacks, { edis: { path: '/edis2' } })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_DEC_ALREADY_PRESENT' })
})

t.test('the longest timer Node runs as asked is accepted for handlerTimeout and claimTtl', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(providerCallbacks, { edis: {}, handlerTimeout: 2 ** 31 - 1, idempotency: { claimTtl: 2 ** 31 - 1 } })
  await t.resolves(async () => { await app.ready() })
})
