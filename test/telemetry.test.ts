// Telemetry through the real OpenTelemetry SDK: an in-memory span exporter and a metric reader.
import { context, metrics, SpanKind, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import providerCallbacks, { memoryStore, type IdempotencyStore, type ProviderCallbacksOptions } from '../lib/index.js'
import { ATTRIBUTES, loadTelemetry, METRICS, OTHER_EVENT_NAME } from '../lib/telemetry.js'
import { basic, CREDENTIALS, EDIS_BODIES, FORM, gate, nextTurn, postBatch, signedItem, VOX } from './helpers.js'
import { sdk, withContextManager } from './telemetry-helpers.js'

t.setTimeout(120_000)
withContextManager(t)

const SECRET = { apiKey: VOX.apiKey, salt: VOX.salt }
const MIN_BALANCE_ID = (callbackId: number) => `voximplant:${VOX.accountId}:${callbackId}`

async function voxApp (options: Partial<ProviderCallbacksOptions>): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(providerCallbacks, { voximplant: { secret: SECRET }, ...options })
  return app
}

/** All a span shows an exporter: to search for secrets. */
function shown (span: ReadableSpan): string {
  const { name, attributes, events, status, links } = span
  return JSON.stringify({ name, attributes, events, status, links })
}

/** The attributes of an event's span, as docs/telemetry.md lists them. */
function spanAttributes (callbackId: number, outcome: string, more: Attributes = {}): Attributes {
  return {
    'messaging.system': 'provider_callbacks',
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': 'voximplant',
    'messaging.message.id': MIN_BALANCE_ID(callbackId),
    'provider_callbacks.event.name': 'min-balance',
    'provider_callbacks.event.known': true,
    'provider_callbacks.outcome': outcome,
    ...more
  }
}

/** The attributes of an event's metric points. */
function pointAttributes (outcome: string, more: Attributes = {}, name = 'min-balance'): Attributes {
  return {
    'messaging.system': 'provider_callbacks',
    'messaging.destination.name': 'voximplant',
    'messaging.operation.name': 'process',
    'provider_callbacks.event.name': name,
    'provider_callbacks.outcome': outcome,
    ...more
  }
}

t.test('delivered, then duplicate: a CONSUMER span per event and its metric points', async t => {
  const otel = sdk()
  const app = await voxApp({ telemetry: otel.telemetry })
  t.teardown(() => app.close())
  app.providerCallbacks.on('min-balance', () => {})
  const item = signedItem('min_balance', 1)
  t.equal((await postBatch(app, [item])).statusCode, 200)
  t.equal((await postBatch(app, [item])).statusCode, 200)
  const spans = (await otel.spans())
  t.same(spans.map(s => [s.name, s.kind, s.status.code]), [['process voximplant', SpanKind.CONSUMER, SpanStatusCode.UNSET], ['process voximplant', SpanKind.CONSUMER, SpanStatusCode.UNSET]])
  t.strictSame(spans[0]!.attributes, spanAttributes(1, 'delivered'))
  t.strictSame(spans[1]!.attributes, spanAttributes(1, 'duplicate'))
  t.strictSame(await otel.points(METRICS.consumed), [
    { attributes: pointAttributes('delivered'), value: 1 },
    { attributes: pointAttributes('duplicate'), value: 1 }
  ])
  t.strictSame(await otel.points(METRICS.duration), [
    { attributes: pointAttributes('delivered'), value: 1 },
    { attributes: pointAttributes('duplicate'), value: 1 }
  ], 'one duration each (a histogram\'s count)')
  t.strictSame(await otel.points(METRICS.refused), [], 'no error answer')
})

t.test('failed: the span is an error with the handler\'s exception; the 500 is counted by code', async t => {
  const otel = sdk()
  const app = await voxApp({ telemetry: otel.telemetry, idempotency: false })
  t.teardown(() => app.close())
  let throwNow: unknown = new Error('boom')
  app.providerCallbacks.on('min-balance', async () => { throw throwNow })
  app.providerCallbacks.onAny(() => { throw new TypeError('sync boom') })
  t.equal((await postBatch(app, [signedItem('min_balance', 2)])).statusCode, 500)
  const [span] = (await otel.spans())
  t.strictSame(span!.attributes, spanAttributes(2, 'failed', { 'error.type': 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED' }))
  t.same(span!.status, { code: SpanStatusCode.ERROR, message: 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED' })
  t.same(span!.events.map(e => [e.name, e.attributes?.['exception.type'], e.attributes?.['exception.message']]).sort(),
    [['exception', 'Error', 'boom'], ['exception', 'TypeError', 'sync boom']], 'both handlers\' failures, the async and the sync one')
  t.strictSame(await otel.points(METRICS.consumed), [{ attributes: pointAttributes('failed', { 'error.type': 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED' }), value: 1 }])
  t.strictSame(await otel.points(METRICS.refused), [{
    attributes: { 'messaging.destination.name': 'voximplant', 'http.response.status_code': 500, 'error.type': 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED' }, value: 1
  }])

  // A thrown value that is not an Error may be anything: only its type is recorded.
  throwNow = `a string holding ${SECRET.apiKey}`
  t.equal((await postBatch(app, [signedItem('min_balance', 3)])).statusCode, 500)
  const events = (await otel.spans())[1]!.events.filter(e => e.attributes?.['exception.type'] === 'string')
  t.same(events.map(e => e.attributes?.['exception.message']), ['a handler threw a value that is not an Error'])
  t.notMatch(shown((await otel.spans())[1]!), SECRET.apiKey)
})

t.test('in flight: a 409 whose span says so, the claims held counted while the first runs', async t => {
  const otel = sdk()
  const app = await voxApp({ telemetry: otel.telemetry, handlerTimeout: false })
  t.teardown(() => app.close())
  const slow = gate()
  app.providerCallbacks.on('min-balance', async () => { await slow.pass() })
  const item = signedItem('min_balance', 4)
  const first = postBatch(app, [item])
  await slow.reached
  t.strictSame(await otel.points(METRICS.claimsHeld), [{ attributes: {}, value: 1 }], 'one claim held while its handler runs')
  t.equal((await postBatch(app, [item])).statusCode, 409)
  t.strictSame((await otel.spans()).map(s => s.attributes), [spanAttributes(4, 'in-flight')], 'in flight is no error')
  t.equal((await otel.spans())[0]!.status.code, SpanStatusCode.UNSET)
  slow.open()
  t.equal((await first).statusCode, 200)
  t.strictSame((await otel.spans()).map(s => s.attributes['provider_callbacks.outcome']), ['in-flight', 'delivered'])
  t.strictSame(await otel.points(METRICS.claimsHeld), [{ attributes: {}, value: 0 }], 'none once it is done')
  t.strictSame(await otel.points(METRICS.refused), [{
    attributes: { 'messaging.destination.name': 'voximplant', 'http.response.status_code': 409, 'error.type': 'FST_PROVIDER_CALLBACKS_IN_FLIGHT' }, value: 1
  }])
})

t.test('unavailable: the store cannot be reached; the span and the 503 say so', async t => {
  const otel = sdk()
  const store: IdempotencyStore = { claim: () => { throw new Error('ECONNREFUSED') }, complete: () => {}, release: () => {} }
  const app = await voxApp({ telemetry: otel.telemetry, idempotency: { store } })
  t.teardown(() => app.close())
  app.providerCallbacks.on('min-balance', () => {})
  t.equal((await postBatch(app, [signedItem('min_balance', 5), signedItem('min_balance', 6)])).statusCode, 503)
  const spans = (await otel.spans())
  t.strictSame(spans.map(s => s.attributes), [spanAttributes(5, 'unavailable', { 'error.type': 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE' })], 'the batch stops there: one span')
  t.equal(spans[0]!.status.code, SpanStatusCode.ERROR)
  t.strictSame(await otel.points(METRICS.consumed), [{ attributes: pointAttributes('unavailable', { 'error.type': 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE' }), value: 1 }])
  t.strictSame(await otel.points(METRICS.refused), [{
    attributes: { 'messaging.destination.name': 'voximplant', 'http.response.status_code': 503, 'error.type': 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE' }, value: 1
  }])
})

t.test('lost: a claim found gone at its refresh; the span is an error', async t => {
  const otel = sdk()
  const inner = memoryStore()
  const store: IdempotencyStore = { ...inner, claim: async (k, o, ttl) => inner.claim(k, o, ttl), refresh: async () => false }
  const app = await voxApp({ telemetry: otel.telemetry, idempotency: { store, claimTtl: 300 }, handlerTimeout: false })
  // The claims' refresh timer is unref'd: without a timer of the test's, the process would end first.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(alive); return app.close() })
  app.providerCallbacks.on('min-balance', async (_event, _request, { signal }) => {
    await new Promise(resolve => signal.addEventListener('abort', resolve))
  })
  t.equal((await postBatch(app, [signedItem('min_balance', 7)])).statusCode, 503)
  t.strictSame((await otel.spans()).map(s => s.attributes), [spanAttributes(7, 'lost', { 'error.type': 'FST_PROVIDER_CALLBACKS_CLAIM_LOST' })])
  t.strictSame(await otel.points(METRICS.consumed), [{ attributes: pointAttributes('lost', { 'error.type': 'FST_PROVIDER_CALLBACKS_CLAIM_LOST' }), value: 1 }])
})

t.test('timed out: the 503 is counted; the event\'s span is marked, and ends with its handlers', async t => {
  const otel = sdk()
  const app = await voxApp({ telemetry: otel.telemetry, handlerTimeout: 1 })
  const slow = gate()
  app.providerCallbacks.on('min-balance', async () => { await slow.pass() })
  const res = await postBatch(app, [signedItem('min_balance', 8)])
  t.equal(res.json().code, 'FST_PROVIDER_CALLBACKS_HANDLER_TIMEOUT')
  t.strictSame((await otel.spans()), [], 'the span is still open: its handler runs')
  t.strictSame(await otel.points(METRICS.refused), [{
    attributes: { 'messaging.destination.name': 'voximplant', 'http.response.status_code': 503, 'error.type': 'FST_PROVIDER_CALLBACKS_HANDLER_TIMEOUT' }, value: 1
  }])
  slow.open()
  await app.close()
  const [span] = (await otel.spans())
  t.strictSame(span!.attributes, spanAttributes(8, 'delivered', { 'provider_callbacks.timed_out': true }))
  t.same(span!.events.map(e => e.name), ['provider_callbacks.handler_timeout'])
  t.strictSame(await otel.points(METRICS.consumed), [{ attributes: pointAttributes('delivered'), value: 1 }], 'counted once, by its final outcome')
})

t.test('a refused request makes no event span; each refusal is counted by status and code', async t => {
  const otel = sdk()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(providerCallbacks, {
    voximplant: { secret: SECRET, bodyLimit: 4096 },
    edis: { credentials: CREDENTIALS, allowedIps: ['127.0.0.1'] },
    telemetry: otel.telemetry
  })
  let ran = 0
  app.providerCallbacks.onAny(() => { ran++ })
  const edis = (headers: Record<string, string>, payload = EDIS_BODIES.canonical, remoteAddress = '127.0.0.1') =>
    app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM, ...headers }, payload, remoteAddress })
  const statuses = [
    (await postBatch(app, [signedItem('min_balance', 9, { hash: 'f'.repeat(32) })])).statusCode,
    (await postBatch(app, [signedItem('min_balance', 10, { balance: 'lots' })])).statusCode,
    (await postBatch(app, [signedItem('min_balance', 11, { padding: 'x'.repeat(5000) })])).statusCode,
    (await postBatch(app, [signedItem('min_balance', 12)], { 'content-type': 'application/xml' })).statusCode,
    (await edis({ authorization: basic(CREDENTIALS.username, 'wrong') })).statusCode,
    (await edis({ authorization: basic(CREDENTIALS.username, CREDENTIALS.password) }, EDIS_BODIES.canonical, '10.0.0.1')).statusCode,
    (await app.inject({ method: 'PUT', url: '/callbacks/edis' })).statusCode
  ]
  t.same(statuses, [401, 400, 413, 415, 401, 403, 405])
  t.equal(ran, 0)
  t.strictSame((await otel.spans()), [], 'no event span')
  const byCode = (await otel.points(METRICS.refused)).map(p => [p.attributes['messaging.destination.name'], p.attributes['http.response.status_code'], p.attributes['error.type'], p.value])
  t.same(byCode, [
    ['voximplant', 401, 'FST_PROVIDER_CALLBACKS_UNAUTHORIZED', 1],
    ['voximplant', 400, 'FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD', 1],
    ['voximplant', 413, 'FST_PROVIDER_CALLBACKS_PAYLOAD_TOO_LARGE', 1],
    ['voximplant', 415, 'FST_PROVIDER_CALLBACKS_UNSUPPORTED_MEDIA_TYPE', 1],
    ['edis', 401, 'FST_PROVIDER_CALLBACKS_UNAUTHORIZED', 1],
    ['edis', 403, 'FST_PROVIDER_CALLBACKS_FORBIDDEN_SOURCE', 1],
    ['edis', 405, 'FST_PROVIDER_CALLBACKS_METHOD_NOT_ALLOWED', 1]
  ])
  t.strictSame(await otel.points(METRICS.consumed), [], 'no event counted')

  // And the EDIS event, accepted: its span and point have the EDIS names.
  t.equal((await edis({ authorization: basic(CREDENTIALS.username, CREDENTIALS.password) })).statusCode, 200)
  t.strictSame((await otel.spans()).map(s => [s.name, s.attributes['messaging.destination.name'], s.attributes['messaging.message.id'], s.attributes['provider_callbacks.event.name']]),
    [['process edis', 'edis', 'edis:kvm_123456_789012:80', 'traffic-threshold']])
})

t.test('under @fastify/otel: the event spans are in the request\'s trace, and a handler\'s spans are their children', async t => {
  const otel = sdk()
  const instrumentation = new FastifyOtelInstrumentation()
  instrumentation.setTracerProvider(otel.tracerProvider)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(instrumentation.plugin())
  await app.register(providerCallbacks, { voximplant: { secret: SECRET }, telemetry: otel.telemetry })
  const tracer = otel.tracerProvider.getTracer('host')
  app.providerCallbacks.on('min-balance', async event => {
    await nextTurn()
    tracer.startSpan(`host work ${event.payload.callback_id}`).end()
  })
  t.equal((await postBatch(app, [signedItem('min_balance', 20), signedItem('min_balance', 21)])).statusCode, 200)
  const all = await otel.finished()
  const byId = new Map(all.map(s => [s.spanContext().spanId, s]))
  const request = all.find(s => s.instrumentationScope.name === '@fastify/otel' && s.parentSpanContext === undefined)
  t.ok(request, '@fastify/otel made the request\'s span')
  const ancestors = (span: ReadableSpan): string[] => {
    const parent = span.parentSpanContext === undefined ? undefined : byId.get(span.parentSpanContext.spanId)
    return parent === undefined ? [] : [parent.name, ...ancestors(parent)]
  }
  const events = (await otel.spans())
  t.equal(events.length, 2)
  for (const span of events) {
    t.equal(span.spanContext().traceId, request!.spanContext().traceId, 'one trace')
    t.ok(ancestors(span).includes(request!.name), `${span.name} descends from the request's span`)
  }
  t.same(events.map(s => s.parentSpanContext?.spanId), [events[0]!.parentSpanContext?.spanId, events[0]!.parentSpanContext?.spanId], 'siblings: the second item\'s span is not a child of the first\'s')
  for (const [i, callbackId] of [20, 21].entries()) {
    const work = all.find(s => s.name === `host work ${callbackId}`)!
    t.equal(work.parentSpanContext?.spanId, events[i]!.spanContext().spanId, `the handler's span is a child of event ${callbackId}'s`)
  }
})

t.test('unknown Voximplant types: metric names bounded (20 kept, cut at 64 characters, the rest as one)', async t => {
  const otel = sdk()
  const app = await voxApp({ telemetry: otel.telemetry, idempotency: false })
  t.teardown(() => app.close())
  app.providerCallbacks.onAny(() => {})
  const long = 'x'.repeat(100)
  const types = [long, ...Array.from({ length: 25 }, (_, i) => `brand_new_${i}`)]
  const items = types.map((type, i) => ({ ...signedItem('min_balance', 100 + i), type, min_balance: undefined, [type]: {} }))
  t.equal((await postBatch(app, [...items, items[0]])).statusCode, 200)
  const names = (await otel.points(METRICS.consumed)).map(p => [p.attributes['provider_callbacks.event.name'], p.value])
  t.same(names, [
    ['x'.repeat(64), 2],
    ...Array.from({ length: 19 }, (_, i) => [`brand-new-${i}`, 1]),
    [OTHER_EVENT_NAME, 6]
  ])
  const spans = (await otel.spans())
  t.same(spans.slice(0, 2).map(s => [s.attributes['provider_callbacks.event.name'], s.attributes['provider_callbacks.event.known']]), [['x'.repeat(64), false], ['brand-new-0', false]])
  t.equal(spans[25]!.attributes['provider_callbacks.event.name'], 'brand-new-24', 'a span keeps the name (cut short)')
})

t.test('the global SDK by default; telemetry: false records nothing; bad providers are refused', async t => {
  const otel = sdk()
  t.ok(trace.setGlobalTracerProvider(otel.tracerProvider))
  t.ok(metrics.setGlobalMeterProvider(otel.meterProvider))
  t.teardown(() => {
    trace.disable()
    metrics.disable()
  })
  for (const telemetry of [undefined, false] as const) {
    const app = await voxApp(telemetry === undefined ? {} : { telemetry })
    app.providerCallbacks.on('min-balance', () => {})
    t.equal((await postBatch(app, [signedItem('min_balance', telemetry === undefined ? 30 : 31)])).statusCode, 200)
    await app.close()
  }
  t.strictSame((await otel.spans()).map(s => s.attributes['messaging.message.id']), [MIN_BALANCE_ID(30)], 'only the app with telemetry on')
  t.strictSame((await otel.points(METRICS.consumed)).map(p => p.value), [1])

  for (const [telemetry, message] of [
    ['on', /telemetry must be an object or false/],
    [{ tracerProvider: {} }, /telemetry.tracerProvider must be an OpenTelemetry TracerProvider/],
    [{ meterProvider: null }, /telemetry.meterProvider must be an OpenTelemetry MeterProvider/]
  ] as const) {
    await t.rejects(voxApp({ telemetry: telemetry as never }), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message })
  }
})

t.test('with the API but no SDK: nothing recorded, handlers run as ever, sync or not, failing or timing out', async t => {
  const app = await voxApp({ handlerTimeout: 1 })
  const seen: unknown[] = []
  const slow = gate()
  app.providerCallbacks.on('min-balance', event => {
    seen.push(trace.getActiveSpan())
    if (event.payload.callback_id === 41) return Promise.reject(new Error('failed with no span to record it on'))
    if (event.payload.callback_id === 42) return slow.pass()
  })
  t.equal((await postBatch(app, [signedItem('min_balance', 40)])).statusCode, 200)
  t.equal((await postBatch(app, [signedItem('min_balance', 41)])).statusCode, 500)
  t.equal((await postBatch(app, [signedItem('min_balance', 42)])).json().code, 'FST_PROVIDER_CALLBACKS_HANDLER_TIMEOUT')
  slow.open()
  await app.close()
  t.same(seen, [undefined, undefined, undefined], 'no span made active')
})

t.test('an app with telemetry off records nothing on the span its handlers run in', async t => {
  const otel = sdk()
  await loadTelemetry(otel.telemetry)
  const app = await voxApp({ telemetry: false })
  t.teardown(() => app.close())
  app.providerCallbacks.on('min-balance', () => { throw new Error('not recorded') })
  const host = otel.tracerProvider.getTracer('host')
  const status = await host.startActiveSpan('host request', async span => {
    const res = await postBatch(app, [signedItem('min_balance', 43)])
    span.end()
    return res.statusCode
  })
  t.equal(status, 500)
  t.same((await otel.finished()).map(s => [s.name, s.events.length]), [['host request', 0]])
})

t.test('without @opentelemetry/api installed: no telemetry, unless providers were given', async t => {
  const notFound = async (): Promise<never> => { throw Object.assign(new Error('Cannot find package \'@opentelemetry/api\''), { code: 'ERR_MODULE_NOT_FOUND' }) }
  let loads = 0
  t.equal(await loadTelemetry(undefined, async () => { loads++ }), undefined)
  t.equal(loads, 0, 'off: the API is not even loaded')
  t.equal(await loadTelemetry({}, notFound), undefined)
  t.equal(await loadTelemetry({}, async () => { throw Object.assign(new Error('x'), { code: 'MODULE_NOT_FOUND' }) }), undefined)
  const { telemetry } = sdk()
  await t.rejects(loadTelemetry({ tracerProvider: telemetry.tracerProvider }, notFound), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /npm install @opentelemetry\/api/ })
  await t.rejects(loadTelemetry({ meterProvider: telemetry.meterProvider }, notFound), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION' })
  await t.rejects(loadTelemetry({}, async () => { throw new SyntaxError('broken install') }), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /broken install/ })
  // eslint-disable-next-line no-throw-literal
  await t.rejects(loadTelemetry({}, async () => { throw null }), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /loaded: null/ })
})

t.test('the inbox\'s part: context stored with a job, a worker span in the request\'s trace, stored/retried/dead-lettered counted', async t => {
  const otel = sdk()
  const telemetry = (await loadTelemetry(otel.telemetry))!
  const tracer = otel.tracerProvider.getTracer('host')
  const event = { name: 'min-balance', provider: 'voximplant', id: MIN_BALANCE_ID(50), payload: {}, receivedAt: new Date(), known: true } as never
  t.equal(telemetry.jobContext(), undefined, 'no span active: nothing to store')
  const request = tracer.startSpan('request')
  const stored = context.with(trace.setSpan(context.active(), request), () => telemetry.jobContext())!
  request.end()
  const { traceId, spanId } = request.spanContext()
  t.strictSame(stored, { traceparent: `00-${traceId}-${spanId}-01` }, 'ids only')
  telemetry.stored(event)

  t.equal(await telemetry.runJob(event, stored, 1, async () => 'in-flight' as const), 'in-flight')
  telemetry.retried(event)
  t.equal(telemetry.runJob(event, stored, 2, () => 'failed' as const), 'failed')
  telemetry.deadLettered(event)
  await t.rejects(telemetry.runJob(event, stored, 3, async () => { throw new Error('worker crashed') }), /worker crashed/)
  t.equal(telemetry.runJob(event, { traceparent: 'garbage' }, 1, () => 'delivered' as const), 'delivered')
  t.equal(telemetry.runJob(event, { traceparent: `00-${'0'.repeat(32)}-${spanId}-01` }, 1, () => 'delivered' as const), 'delivered')
  t.equal(telemetry.runJob(event, undefined, 1, () => 'delivered' as const), 'delivered')

  const jobs = (await otel.spans())
  t.same(jobs.map(s => [s.attributes['messaging.message.delivery_count'], s.attributes['provider_callbacks.outcome'], s.attributes['error.type'], s.spanContext().traceId === traceId]), [
    [1, 'in-flight', undefined, true],
    [2, 'failed', 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED', true],
    [3, 'failed', 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED', true],
    [1, 'delivered', undefined, false],
    [1, 'delivered', undefined, false],
    [1, 'delivered', undefined, false]
  ], 'the stored context continues the request\'s trace; an unreadable one starts a trace of its own')
  for (const span of jobs.slice(0, 3)) {
    t.equal(span.parentSpanContext?.spanId, spanId, 'child of the request\'s span')
    t.same(span.links.map(l => [l.context.traceId, l.context.spanId]), [[traceId, spanId]], 'and linked to it')
  }
  t.same(jobs.slice(3).map(s => [s.parentSpanContext, s.links.length]), [[undefined, 0], [undefined, 0], [undefined, 0]])
  t.same(jobs[2]!.events.map(e => e.attributes?.['exception.message']), ['worker crashed'])
  const attributes = { 'messaging.system': 'provider_callbacks', 'messaging.destination.name': 'voximplant', 'provider_callbacks.event.name': 'min-balance' }
  for (const name of [METRICS.stored, METRICS.retried, METRICS.deadLettered]) {
    t.strictSame(await otel.points(name), [{ attributes, value: 1 }], name)
  }

  // A delivery that rejects (none of the plugin's do): its span still ends, as failed.
  const observe = telemetry.observer('voximplant')
  await t.rejects(Promise.resolve(observe(event, {} as never, async () => { throw new Error('deliver broke') })), /deliver broke/)
  t.equal((await otel.spans()).at(-1)!.attributes[ATTRIBUTES.outcome], 'failed')
  // eslint-disable-next-line no-throw-literal
  await t.rejects(Promise.resolve(observe(event, {} as never, async () => { throw 'a string' })))
  t.same((await otel.spans()).at(-1)!.events.map(e => e.attributes?.['exception.message']), ['a string'])
})
