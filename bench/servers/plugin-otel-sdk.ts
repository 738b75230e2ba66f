// The plugin under an OpenTelemetry SDK registered globally, as NodeSDK would: the async-local-storage
// context manager, every span sampled and batched to an exporter, the metrics aggregated and read
// every 10 s. The exporters discard what they get: the cost measured is the process's, not a network's.
import { context, metrics, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics'
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace'
import { servePlugin } from './plugin-app.js'

const SUCCESS = { code: 0 }
const spans: SpanExporter = { export: (_spans, done) => { done(SUCCESS) }, shutdown: async () => {} }
const points: PushMetricExporter = { export: (_metrics, done) => { done(SUCCESS) }, forceFlush: async () => {}, shutdown: async () => {} }

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const tracerProvider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: spans })] })
const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: points, exportIntervalMillis: 10_000 })] })
trace.setGlobalTracerProvider(tracerProvider)
metrics.setGlobalMeterProvider(meterProvider)

await servePlugin(undefined, async () => {
  await tracerProvider.shutdown()
  await meterProvider.shutdown()
})
