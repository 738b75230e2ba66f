// The instrumentation's own cost per event, in-process, without HTTP: a delivery that answers at
// once, bare and wrapped by the plugin's telemetry, with @opentelemetry/api and no SDK (what every
// app with the API installed pays), then under a registered SDK. Run: node --import tsx bench/extras/telemetry-overhead.ts
import { context, metrics, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics'
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace'
import type { AnyProviderCallbackEvent } from '../../lib/event-types.js'
import type { Deliver, ObserveDelivery } from '../../lib/delivery/outcome.js'
import { loadTelemetry } from '../../lib/telemetry.js'

const N = 1_000_000
const event = { name: 'min-balance', provider: 'voximplant', id: 'voximplant:1234567:1', payload: {}, receivedAt: new Date(), known: true } as unknown as AnyProviderCallbackEvent
const request = {} as never
const bare: Deliver = () => 'delivered'

function nsPerCall (deliver: Deliver): number {
  for (let i = 0; i < N / 10; i++) deliver(event, request)
  const started = process.hrtime.bigint()
  for (let i = 0; i < N; i++) deliver(event, request)
  return Number(process.hrtime.bigint() - started) / N
}

// What the guard does with the telemetry's observer: each delivery run inside it.
const observed = (observe: ObserveDelivery): Deliver => (event, request) => observe(event, request, () => bare(event, request))
const noSdk = observed((await loadTelemetry({}))!.observer('voximplant'))
const rows: Array<[string, number]> = []
for (let round = 0; round < 3; round++) {
  rows.push(['bare', nsPerCall(bare)], ['no SDK', nsPerCall(noSdk)])
}

const SUCCESS = { code: 0 }
const spans: SpanExporter = { export: (_spans, done) => { done(SUCCESS) }, shutdown: async () => {} }
const points: PushMetricExporter = { export: (_metrics, done) => { done(SUCCESS) }, forceFlush: async () => {}, shutdown: async () => {} }
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: spans })] }))
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: points, exportIntervalMillis: 10_000 })] }))
const withSdk = observed((await loadTelemetry({}))!.observer('voximplant'))
for (let round = 0; round < 3; round++) rows.push(['SDK', nsPerCall(withSdk)])

const median = (name: string): number => rows.filter(([n]) => n === name).map(([, ns]) => ns).sort((a, b) => a - b)[1]!
console.log(`ns per event, median of 3 runs of ${N}: bare ${median('bare').toFixed(0)}, with the API and no SDK ${median('no SDK').toFixed(0)}, under an SDK ${median('SDK').toFixed(0)}`)
process.exit(0)
