// Type tests of the telemetry option: the SDK's providers fit it, wrong shapes do not. The
// package's own declarations name nothing from @opentelemetry/api: check-package.mjs type-checks them where it is not installed.
import { trace, metrics } from '@opentelemetry/api'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { TracerProvider } from '@opentelemetry/sdk-trace'
import Fastify from 'fastify'
import providerCallbacks, { type MeterProviderLike, type ProviderCallbacksOptions, type TelemetryOptions, type TracerProviderLike } from '../../lib/index.js'
import { type Equal, expectType } from './assert.js'

const app = Fastify()

expectType<Equal<ProviderCallbacksOptions['telemetry'], TelemetryOptions | false | undefined>>()
expectType<Equal<TelemetryOptions, { tracerProvider?: TracerProviderLike, meterProvider?: MeterProviderLike }>>()
await app.register(providerCallbacks, { edis: {}, telemetry: false })
await app.register(providerCallbacks, { edis: {}, telemetry: {} })
await app.register(providerCallbacks, { edis: {}, telemetry: { tracerProvider: new TracerProvider(), meterProvider: new MeterProvider() } })
// The API's own (global) providers fit too.
await app.register(providerCallbacks, { edis: {}, telemetry: { tracerProvider: trace.getTracerProvider(), meterProvider: metrics.getMeterProvider() } })
// @ts-expect-error telemetry is on by default; true is not an option
const telemetryTrue: ProviderCallbacksOptions = { edis: {}, telemetry: true }
// @ts-expect-error a MeterProvider is not a TracerProvider
const swapped: TelemetryOptions = { tracerProvider: new MeterProvider() }
// @ts-expect-error a Tracer is not a TracerProvider
const tracer: TelemetryOptions = { tracerProvider: trace.getTracer('x') }
// @ts-expect-error an unknown telemetry option
const typo: TelemetryOptions = { tracer: new TracerProvider() }

export { telemetryTrue, swapped, tracer, typo }
