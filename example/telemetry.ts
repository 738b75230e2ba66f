/**
 * `npm run demo -- --telemetry`: the demo's app under the OpenTelemetry SDK, with exporters that keep
 * what they get in memory, so that the demo can print the spans and metric points the plugin made.
 * In production the SDK sends them to a collector or Prometheus instead (docs/telemetry.md).
 */
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics'
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'
import type { TelemetryOptions } from '../lib/index.js'

class OnDemandReader extends MetricReader {
  protected override async onForceFlush (): Promise<void> {}
  protected override async onShutdown (): Promise<void> {}
}

export interface DemoTelemetry {
  /** The plugin's `telemetry` option: the SDK's providers. */
  options: TelemetryOptions
  /** Prints the spans and metric points made so far. */
  print: () => Promise<void>
}

export function demoTelemetry (): DemoTelemetry {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] })
  const reader = new OnDemandReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const print = async (): Promise<void> => {
    await tracerProvider.forceFlush()
    const spans = exporter.getFinishedSpans()
    console.log(`\nTelemetry: ${spans.length} spans`)
    for (const span of spans) {
      const a = span.attributes
      const ms = span.duration[0] * 1e3 + span.duration[1] / 1e6
      console.log(`  ${span.name}  ${String(a['provider_callbacks.event.name'])}  ${String(a['messaging.message.id'])}  ` +
        `outcome ${String(a['provider_callbacks.outcome'])}${a['error.type'] === undefined ? '' : `  error.type ${String(a['error.type'])}`}  ${ms.toFixed(1)} ms`)
    }
    const { resourceMetrics } = await reader.collect()
    console.log('Metric points:')
    for (const metric of resourceMetrics.scopeMetrics.flatMap(scope => scope.metrics)) {
      for (const point of metric.dataPoints) {
        const value = (point as DataPoint<number | Histogram>).value
        const shown = typeof value === 'number' ? String(value) : `count ${value.count}, sum ${(value.sum ?? 0).toFixed(4)} s`
        console.log(`  ${metric.descriptor.name} ${JSON.stringify(point.attributes)}: ${shown}`)
      }
    }
  }
  return { options: { tracerProvider, meterProvider }, print }
}
