// The real OpenTelemetry SDK for tests: an in-memory span exporter and a metric reader collected on demand.
import { context, type Attributes } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics'
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace'
import type { Test } from 'tap'
import { INSTRUMENTATION_NAME } from '../lib/telemetry.js'

/** The context manager NodeSDK registers, for the test file's duration: spans then have parents. */
export function withContextManager (t: Test): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  t.teardown(() => { context.disable() })
}

export class TestReader extends MetricReader {
  protected override async onForceFlush (): Promise<void> {}
  protected override async onShutdown (): Promise<void> {}
}

export interface Point { attributes: Attributes, value: number }

/** A fresh SDK: its providers, the plugin's finished spans, and a metric's points now. */
export function sdk () {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] })
  const reader = new TestReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  // The processor exports a span a few turns after it ends: a flush waits for that.
  const finished = async (): Promise<ReadableSpan[]> => {
    await tracerProvider.forceFlush()
    return exporter.getFinishedSpans()
  }
  const spans = async (): Promise<ReadableSpan[]> => (await finished()).filter(span => span.instrumentationScope.name === INSTRUMENTATION_NAME)
  const points = async (name: string): Promise<Point[]> => {
    const { resourceMetrics } = await reader.collect()
    const metric = resourceMetrics.scopeMetrics.flatMap(scope => scope.metrics).find(m => m.descriptor.name === name)
    return (metric?.dataPoints ?? []).map(point => {
      const value = (point as DataPoint<number | Histogram>).value
      return { attributes: point.attributes, value: typeof value === 'number' ? value : value.count }
    })
  }
  return { tracerProvider, meterProvider, finished, spans, points, telemetry: { tracerProvider, meterProvider } }
}
