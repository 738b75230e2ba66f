import { context } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'
import { InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, AggregationTemporality } from '@opentelemetry/sdk-metrics'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import Fastify from 'fastify'
import t from 'tap'
import providerCallbacks from '../lib/index.js'
import { basic, CREDENTIALS, EDIS_BODIES, FORM } from './helpers.js'

t.test('no secret reaches a log line at trace level, a span or a metric, whatever the request', async t => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'trace', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  // Every span and metric point, the plugin's and @fastify/otel's as docs/telemetry.md sets it up: the request's
  // url.path without its query, where an EDIS GET hook carries its credentials.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  t.teardown(() => { context.disable() })
  const spans = new InMemorySpanExporter()
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] })
  const points = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter: points, exportIntervalMillis: 3_600_000 })
  const meterProvider = new MeterProvider({ readers: [reader] })
  const instrumentation = new FastifyOtelInstrumentation({ requestHook: (span, request) => { span.setAttribute('url.path', request.url.split('?')[0]!) } })
  instrumentation.setTracerProvider(tracerProvider)
  await app.register(instrumentation.plugin())
  const rotated = { username: 'hook', password: 'second secret value' }
  await app.register(providerCallbacks, { edis: { credentials: [CREDENTIALS, rotated] }, idempotency: false, telemetry: { tracerProvider, meterProvider } })
  let fail = false
  app.providerCallbacks.on('traffic-threshold', () => { if (fail) throw new Error('handler failed') })
  const { username, password } = CREDENTIALS
  const asFields = new URLSearchParams({ callback_user: username, callback_pw: password }).toString()
  const wrongFields = new URLSearchParams({ callback_user: username, callback_pw: 'wrong guess' }).toString()
  const requests = [
    { method: 'POST', headers: { authorization: basic(username, password) }, payload: EDIS_BODIES.canonical },
    { method: 'POST', headers: { authorization: basic(username, 'wrong guess') }, payload: EDIS_BODIES.canonical },
    { method: 'POST', headers: {}, payload: `${EDIS_BODIES.canonical}&${asFields}` },
    { method: 'POST', headers: {}, payload: `${EDIS_BODIES.canonical}&${wrongFields}` },
    { method: 'POST', headers: {}, payload: `kvm=k&trigger_value=bad&${asFields}` },
    { method: 'GET', query: `${EDIS_BODIES.canonical}&${asFields}` },
    { method: 'GET', query: `${asFields}&kvm=k` },
    { method: 'GET', query: `callback_pw=${encodeURIComponent(password)}&${EDIS_BODIES.canonical}&callback_user=${username}&callback_pw=again` },
    { method: 'GET', query: `${EDIS_BODIES.canonical}&flag&callback_user=${username}&callback_pw=${encodeURIComponent(password)}` }
  ] as const
  const statuses = []
  for (const failing of [false, true]) {
    fail = failing
    for (const request of requests) {
      const res = await app.inject({
        method: request.method,
        url: `/callbacks/edis${'query' in request ? `?${request.query}` : ''}`,
        headers: { 'content-type': FORM, ...('headers' in request ? request.headers : {}) },
        payload: 'payload' in request ? request.payload : undefined
      })
      statuses.push(res.statusCode)
      t.notMatch(res.body, password)
    }
  }
  t.same(statuses, [200, 401, 200, 401, 400, 200, 400, 401, 200, 500, 401, 500, 401, 400, 500, 400, 401, 500], 'every kind of outcome was logged')
  const log = lines.join('\n')
  t.ok(lines.length > 40, 'the run logged every request')
  t.match(log, /callback_pw=\[redacted\]/, 'a GET query is logged with its credentials redacted')
  await tracerProvider.forceFlush()
  await reader.forceFlush()
  const exported = spans.getFinishedSpans()
  t.ok(exported.filter(span => span.name === 'process edis').length === 8 && exported.length > 50, 'a span for each event, and @fastify/otel\'s')
  t.ok(points.getMetrics().length > 0, 'metrics were exported')
  const telemetry = JSON.stringify({
    spans: exported.map(({ name, attributes, events, status, links }) => ({ name, attributes, events, status, links })),
    metrics: points.getMetrics().flatMap(m => m.scopeMetrics.flatMap(scope => scope.metrics.map(({ descriptor, dataPoints }) => ({ descriptor, dataPoints }))))
  })
  for (const secret of [
    password, encodeURIComponent(password), new URLSearchParams({ p: password }).toString().slice(2),
    rotated.password, 'wrong guess', 'wrong+guess', 'again',
    Buffer.from(`${username}:${password}`).toString('base64'), Buffer.from(`${username}:wrong guess`).toString('base64')
  ]) {
    t.notOk(log.includes(secret), `the log never contains ${JSON.stringify(secret)}`)
    t.notOk(telemetry.includes(secret), `no span or metric contains ${JSON.stringify(secret)}`)
  }
})

t.test('a failure in a host hook on the route is a 500 in the documented shape', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.addHook('preHandler', async () => { throw new Error('host bug') })
  await app.register(providerCallbacks, { edis: {} })
  const res = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { status: 'error', message: 'Internal server error occurred while processing the callback.', code: 'FST_PROVIDER_CALLBACKS_INTERNAL' })
})

t.test('a store of the host\'s that throws something not an Error: a 503, and the log line carries what it threw, as a message', async t => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  const store = {
    // eslint-disable-next-line no-throw-literal -- a third party's store may throw anything
    claim: () => { throw 'the ledger is locked' },
    complete: () => {},
    release: () => {}
  }
  await app.register(providerCallbacks, { edis: { credentials: CREDENTIALS }, idempotency: { store } })
  app.providerCallbacks.on('traffic-threshold', () => {})
  const answer = await app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, authorization: basic(CREDENTIALS.username, CREDENTIALS.password) }, payload: EDIS_BODIES.canonical })
  t.equal(answer.statusCode, 503)
  const [line] = lines.map(line => JSON.parse(line) as { msg: string, err?: unknown }).filter(line => line.msg === 'the idempotency store did not take the claim')
  t.match(line?.err, { type: 'string', message: 'the ledger is locked' })
})
