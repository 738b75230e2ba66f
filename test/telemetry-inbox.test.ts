// Telemetry with the inbox, against the real Redis and the real OpenTelemetry SDK: one trace from the
// provider's request to the worker's runs, and the inbox's metrics.
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { Queue } from 'bullmq'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import t from 'tap'
import providerCallbacks, { createInboxWorker, type AnyProviderCallbackEvent } from '../lib/index.js'
import type { BullmqInbox } from '../lib/inbox/inbox.js'
import { jobIdOf } from '../lib/inbox/job.js'
import { METRICS } from '../lib/telemetry.js'
import { gate, postBatch, signedItem, VOX } from './helpers.js'
import { counts, fannedOut, received, testInbox, until, workerConnection } from './inbox-helpers.js'
import { REDIS_URL, redisAvailable } from './redis-helpers.js'
import { sdk, withContextManager } from './telemetry-helpers.js'

t.setTimeout(120_000)
withContextManager(t)

const idOf = (id: number): string => `voximplant:${VOX.accountId}:${id}`
const NAMES = { 'messaging.system': 'provider_callbacks', 'messaging.destination.name': 'voximplant', 'provider_callbacks.event.name': 'min-balance' }

t.test('inbox telemetry', async t => {
  if (!await redisAvailable(t)) return

  t.test('one trace from the request to the worker: its runs continue the request\'s trace and link to it; stored, retried, dead-lettered counted', async t => {
    const otel = sdk()
    const { inbox, name } = testInbox(t, { attempts: 2 })
    const instrumentation = new FastifyOtelInstrumentation()
    instrumentation.setTracerProvider(otel.tracerProvider)
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(instrumentation.plugin())
    await app.register(providerCallbacks, { voximplant: { secret: VOX }, inbox, telemetry: otel.telemetry })
    const host = otel.tracerProvider.getTracer('host')
    const seen: AnyProviderCallbackEvent[] = []
    app.providerCallbacks.on('min-balance', event => {
      seen.push(event)
      host.startSpan(`host work ${event.payload.callback_id}`).end()
      if (event.payload.callback_id === 2) throw new Error('always fails')
    })
    const exhausted: string[] = []
    inbox.on('exhausted', event => { exhausted.push(event.id) })
    await app.ready()

    t.equal((await postBatch(app, [signedItem('min_balance', 1), signedItem('min_balance', 2)])).statusCode, 200)
    await until(async () => exhausted.length === 1 && seen.length === 3, 'the first event run, the second dead-lettered')

    // What the job holds: the event and a traceparent, nothing else.
    const connection = workerConnection(REDIS_URL)
    const queue = new Queue(name, { connection })
    t.teardown(async () => {
      await queue.close()
      connection.disconnect()
    })
    const job = await queue.getJob(jobIdOf(idOf(1)))
    t.same(Object.keys(job!.data).sort(), ['id', 'known', 'name', 'payload', 'provider', 'receivedAt', 'trace'])
    t.same(Object.keys(job!.data.trace), ['traceparent'])
    t.match(job!.data.trace.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    t.notOk(seen.some(event => 'trace' in event), 'handlers get the event, not the job\'s trace context')

    const all = await otel.finished()
    const request = all.find(s => s.instrumentationScope.name === '@fastify/otel' && s.name === 'request')!
    const [, traceId, spanId] = /^00-(\w+)-(\w+)-/.exec(job!.data.trace.traceparent)!
    t.equal(traceId, request.spanContext().traceId, 'the stored context is the request\'s trace')
    t.ok(all.some(s => s.spanContext().spanId === spanId && s.spanContext().traceId === traceId), 'and one of its spans (the route handler\'s)')
    const runs = await otel.spans()
    t.same(runs.map(s => [s.attributes['messaging.message.id'], s.attributes['messaging.message.delivery_count'], s.attributes['provider_callbacks.outcome']]).sort(), [
      [idOf(1), 1, 'delivered'],
      [idOf(2), 1, 'failed'],
      [idOf(2), 2, 'failed']
    ])
    for (const run of runs) {
      t.equal(run.spanContext().traceId, traceId, 'in the request\'s trace')
      t.equal(run.parentSpanContext?.spanId, spanId, 'a child of the span that stored it')
      t.same(run.links.map(link => link.context.spanId), [spanId], 'and linked to it')
    }
    const work = all.find(s => s.name === 'host work 1')!
    t.equal(work.parentSpanContext?.spanId, runs.find(s => s.attributes['messaging.message.id'] === idOf(1))!.spanContext().spanId, 'a handler\'s span is a child of its run\'s')
    t.same(runs.filter(s => s.attributes['provider_callbacks.outcome'] === 'failed').map(s => s.events.map(e => e.attributes?.['exception.message'])), [['always fails'], ['always fails']])

    t.strictSame(await otel.points(METRICS.stored), [{ attributes: NAMES, value: 2 }])
    t.strictSame(await otel.points(METRICS.retried), [{ attributes: NAMES, value: 1 }])
    t.strictSame(await otel.points(METRICS.deadLettered), [{ attributes: NAMES, value: 1 }])
    t.same((await otel.points(METRICS.consumed)).map(p => [p.attributes['provider_callbacks.outcome'], p.value]), [['delivered', 1], ['failed', 2]])
  })

  t.test('claims held counts the inbox workers\' runs: the app\'s own worker\'s, and one of createInboxWorker\'s with a route\'s of the same process', async t => {
    const otel = sdk()
    const held = async (): Promise<unknown> => (await otel.points(METRICS.claimsHeld)).map(point => point.value)

    const { inbox } = testInbox(t)
    const running = gate()
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(providerCallbacks, { voximplant: { secret: VOX }, inbox, telemetry: otel.telemetry, handlers: { 'min-balance': async () => { await running.pass() } } })
    await app.ready()
    t.same(await held(), [0], 'none before')
    t.equal((await postBatch(app, [signedItem('min_balance', 5)])).statusCode, 200)
    await running.reached
    t.same(await held(), [1], 'one while the app\'s worker runs the event')
    running.open()
    await until(async () => (await counts(inbox)).completed === 1, 'the event done')
    t.same(await held(), [0], 'none once it is done')

    // In one process: an app without an inbox, whose route holds a claim while its handler runs,
    // and a worker of its own beside an API-only app.
    const direct = Fastify()
    t.teardown(() => direct.close())
    const directRunning = gate()
    await direct.register(providerCallbacks, { voximplant: { secret: VOX }, telemetry: otel.telemetry, handlerTimeout: false, handlers: { 'min-balance': async () => { await directRunning.pass() } } })
    await direct.ready()
    const other = testInbox(t)
    const api = Fastify()
    t.teardown(() => api.close())
    await api.register(providerCallbacks, { voximplant: { secret: VOX }, inbox: other.inbox, worker: false, telemetry: otel.telemetry })
    await api.ready()
    const workerRunning = gate()
    const worker = createInboxWorker(other.inbox, { onAny: async () => { await workerRunning.pass() }, telemetry: otel.telemetry })
    t.teardown(() => worker.close())
    t.equal((await postBatch(api, [signedItem('min_balance', 6)])).statusCode, 200)
    await workerRunning.reached
    t.same(await held(), [1], 'one while a worker of its own runs it')
    const answered = postBatch(direct, [signedItem('min_balance', 7)])
    await directRunning.reached
    t.same(await held(), [2], 'and the route\'s beside it')
    workerRunning.open()
    await until(async () => (await counts(other.inbox)).completed === 1, 'the worker\'s event done')
    t.same(await held(), [1], 'the route\'s still held')
    directRunning.open()
    t.equal((await answered).statusCode, 200)
    t.same(await held(), [0])
  })

  t.test('a received entry Redis refuses to fan out: an error logged without its command (the payload), counted each time, kept, and run once Redis takes it', async t => {
    const otel = sdk()
    const { inbox, name, connection } = testInbox(t)
    const bullmq = inbox as BullmqInbox
    await bullmq.connect()
    await bullmq.enqueue([{ name: 'min-balance', provider: 'voximplant', id: idOf(8), payload: { note: 'PAYLOAD-MARK' }, receivedAt: new Date(), known: true } as unknown as AnyProviderCallbackEvent])
    // BullMQ's add first counts the job in the queue's id key: one that is no integer makes Redis
    // refuse it before anything is written, an ioredis error that holds the script's arguments,
    // the job's data among them.
    const counter = `bull:${name}:id`
    await connection.set(counter, 'not a number')
    // As pino writes an error: its message, stack and every field of its own.
    const logged = (fields: object): string => JSON.stringify(fields, (_key, value: unknown) => value instanceof Error ? { ...value, message: value.message, stack: value.stack } : value)
    const logs: string[] = []
    const fanOutErrors: string[] = []
    const logger = {
      error: (fields: { err: Error }, message: string) => {
        logs.push(logged(fields))
        if (message.startsWith('could not fan received events out')) fanOutErrors.push(`${message}: ${fields.err.message}`)
      },
      warn: (fields: object) => { logs.push(logged(fields)) }
    } as unknown as FastifyBaseLogger
    const runs: string[] = []
    const worker = createInboxWorker(inbox, { onAny: event => { runs.push(event.id) }, logger, lockDuration: 300, stalledInterval: 100, telemetry: otel.telemetry })
    t.teardown(async () => { await worker.close() })
    await until(() => fanOutErrors.length >= 2, 'the entry refused, and again once taken again')
    t.match(fanOutErrors[0], /^could not fan received events out into a job each; taken again after lockDuration: .*not an integer/)
    t.same(logs.filter(log => log.includes('PAYLOAD-MARK')), [], 'no log holds the payload')
    t.same(runs, [])
    t.equal((await received(inbox)).length, 1, 'the entry is kept')
    await connection.del(counter)
    await until(() => runs.length === 1, 'its event run once Redis takes it')
    await fannedOut(inbox)
    await worker.close()
    t.same(runs, [idOf(8)])
    t.strictSame(await otel.points(METRICS.fanOutFailed), [{ attributes: { 'messaging.system': 'provider_callbacks' }, value: fanOutErrors.length }], 'each refusal counted')
  })

  t.test('a worker of its own (createInboxWorker) continues the API replica\'s traces; telemetry: false records nothing', async t => {
    const otel = sdk()
    const { inbox } = testInbox(t, { attempts: 2 })
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(providerCallbacks, { voximplant: { secret: VOX }, inbox, worker: false, telemetry: otel.telemetry })
    await app.ready()
    const host = otel.tracerProvider.getTracer('host')
    const sent = await host.startActiveSpan('provider request', async span => {
      const res = await postBatch(app, [signedItem('min_balance', 3)])
      span.end()
      return { status: res.statusCode, context: span.spanContext() }
    })
    t.equal(sent.status, 200)
    t.throws(() => createInboxWorker(inbox, { telemetry: { tracerProvider: {} as never } }), { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION', message: /telemetry.tracerProvider/ })

    const other = sdk()
    const ran: string[] = []
    // Without telemetry, a run that fails is retried and then dead-lettered, as ever.
    const exhausted: string[] = []
    const off = createInboxWorker(inbox, { onAny: event => { ran.push(`off ${event.id}`); throw new Error('fails') }, telemetry: false })
    off.on('exhausted', event => { exhausted.push(event.id) })
    await until(() => exhausted.length === 1, 'the worker without telemetry ran the event twice')
    await off.close()
    t.same(await other.spans(), [])

    // A redelivery of the same id is stored as nothing new: a fresh event for the traced worker.
    const again = await host.startActiveSpan('provider request', async span => {
      const res = await postBatch(app, [signedItem('min_balance', 4)])
      span.end()
      return { status: res.statusCode, context: span.spanContext() }
    })
    t.equal(again.status, 200)
    const worker = createInboxWorker(inbox, { onAny: event => { ran.push(`traced ${event.id}`) }, telemetry: otel.telemetry })
    t.teardown(() => worker.close())
    await until(async () => ran.length === 3 && (await otel.spans()).length === 1, 'the traced worker ran the event, and its span ended')
    t.same(ran, [`off ${idOf(3)}`, `off ${idOf(3)}`, `traced ${idOf(4)}`])
    t.same(exhausted, [idOf(3)])
    const [run] = await otel.spans()
    t.equal(run!.spanContext().traceId, again.context.traceId)
    t.equal(run!.parentSpanContext?.spanId, again.context.spanId)
    t.strictSame(await otel.points(METRICS.stored), [{ attributes: NAMES, value: 2 }], 'the API replica counted what it stored')
  })
})
