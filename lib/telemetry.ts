// OpenTelemetry traces and metrics. `@opentelemetry/api` is an optional peer: it is imported here
// only, at registration, and only when telemetry is not turned off; an app without it loads nothing
// and runs no telemetry code at all. With it but without an SDK, the API's no-op tracer and meter
// record nothing. Only the types are imported statically, and no exported declaration names them, so
// the package's .d.ts files type-check in a project that does not install the API.
import type * as Otel from '@opentelemetry/api'
import { ClaimLostError, HandlerFailedError, HandlerTimeoutError, InvalidOptionError, StoreUnavailableError } from './errors.js'
import type { AnyProviderCallbackEvent, ProviderName } from './event-types.js'
import type { DeliveryRequest, ObserveDelivery, Outcome } from './delivery/outcome.js'
import { isPromiseLike, type MaybePromise } from './maybe-promise.js'

/** What the plugin calls on a TracerProvider (an OpenTelemetry SDK's is one). */
export interface TracerProviderLike {
  getTracer(name: string, version?: string): object
}

/** What the plugin calls on a MeterProvider (an OpenTelemetry SDK's is one). */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): object
}

/** The `telemetry` option. Without providers, the global ones (those an SDK registers) are used. */
export interface TelemetryOptions {
  tracerProvider?: TracerProviderLike
  meterProvider?: MeterProviderLike
}

/** Trace context stored with an inbox job: the W3C `traceparent` of the span that stored it. Ids only, never a credential. */
export interface JobTraceContext {
  traceparent: string
}

/** The instrumentation scope's name: what a span or metric exporter shows as its origin. */
export const INSTRUMENTATION_NAME = 'fastify-provider-callbacks'

/** Every attribute key the plugin sets, in one table: the messaging conventions' where they fit. */
export const ATTRIBUTES = {
  system: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  messageId: 'messaging.message.id',
  deliveryCount: 'messaging.message.delivery_count',
  errorType: 'error.type',
  statusCode: 'http.response.status_code',
  event: 'provider_callbacks.event.name',
  known: 'provider_callbacks.event.known',
  outcome: 'provider_callbacks.outcome',
  timedOut: 'provider_callbacks.timed_out'
} as const

/** Every metric the plugin records. */
export const METRICS = {
  consumed: 'messaging.client.consumed.messages',
  duration: 'messaging.process.duration',
  refused: 'provider_callbacks.requests.refused',
  claimsHeld: 'provider_callbacks.claims.held',
  stored: 'provider_callbacks.inbox.stored',
  retried: 'provider_callbacks.inbox.retried',
  deadLettered: 'provider_callbacks.inbox.dead_lettered',
  fanOutFailed: 'provider_callbacks.inbox.fan_out_failed'
} as const

type SpanAttributes = Partial<Record<typeof ATTRIBUTES[keyof typeof ATTRIBUTES], Otel.AttributeValue>>
const SPAN_NAMES: Record<ProviderName, string> = { edis: 'process edis', voximplant: 'process voximplant' }

/** `messaging.system`: no registered value fits a provider's callbacks. */
export const MESSAGING_SYSTEM = 'provider_callbacks'

// The error code an outcome stands for, as the route answers it; the others are not errors.
const ERROR_TYPES: Partial<Record<Outcome, string>> = {
  failed: new HandlerFailedError().code,
  unavailable: new StoreUnavailableError().code,
  lost: new ClaimLostError().code
}
const TIMEOUT_CODE = new HandlerTimeoutError().code

// Voximplant types this version does not know are the sender's strings (signed, but chosen by
// whoever holds the API key): a metric takes the first few, cut short, and counts the rest as one.
const MAX_UNKNOWN_NAMES = 20
const MAX_NAME_LENGTH = 64
export const OTHER_EVENT_NAME = 'other'

const NOT_INSTALLED = new Set(['ERR_MODULE_NOT_FOUND', 'MODULE_NOT_FOUND'])

// The claims held, by meter provider: the plugin's and each inbox worker's, in one process, are
// the one gauge's (observed by several callbacks, it would read the last one's count only). The
// one piece of telemetry state not per instance, for that reason: the gauge is the meter
// provider's, shared by every instance that records through it. Nothing outside this file reads it.
const claimHolders = new WeakMap<object, { holders: Set<() => number>, stop: () => void }>()

/** The `telemetry` option checked: undefined when it is off. */
export function resolveTelemetry (option: TelemetryOptions | false | undefined): TelemetryOptions | undefined {
  if (option === false) return undefined
  const telemetry = option ?? {}
  if (typeof telemetry !== 'object' || telemetry === null) throw new InvalidOptionError('telemetry must be an object or false')
  const { tracerProvider, meterProvider } = telemetry
  if (tracerProvider !== undefined && typeof (tracerProvider as Partial<typeof tracerProvider> | null)?.getTracer !== 'function') {
    throw new InvalidOptionError('telemetry.tracerProvider must be an OpenTelemetry TracerProvider (with getTracer)')
  }
  if (meterProvider !== undefined && typeof (meterProvider as Partial<typeof meterProvider> | null)?.getMeter !== 'function') {
    throw new InvalidOptionError('telemetry.meterProvider must be an OpenTelemetry MeterProvider (with getMeter)')
  }
  return telemetry
}

/**
 * The plugin's telemetry, or undefined when there is none: turned off, or `@opentelemetry/api`
 * not installed (then nothing is wrapped, and nothing recorded). Providers given without the API
 * installed are an error: the host asked for telemetry it cannot have.
 */
export async function loadTelemetry (
  options: TelemetryOptions | undefined,
  load: () => Promise<unknown> = async () => await import('@opentelemetry/api')
): Promise<Telemetry | undefined> {
  if (options === undefined) return undefined
  let api: typeof Otel
  try {
    api = await load() as typeof Otel
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code
    if (typeof code === 'string' && NOT_INSTALLED.has(code) && options.tracerProvider === undefined && options.meterProvider === undefined) return undefined
    throw new InvalidOptionError(`telemetry needs @opentelemetry/api (npm install @opentelemetry/api), which could not be loaded: ${String((error as Error | null)?.message ?? error)}`)
  }
  return new Telemetry(api, options)
}

interface Instruments {
  consumed: Otel.Counter
  duration: Otel.Histogram
  refused: Otel.Counter
  claimsHeld: Otel.ObservableUpDownCounter
  stored: Otel.Counter
  retried: Otel.Counter
  deadLettered: Otel.Counter
  fanOutFailed: Otel.Counter
}

/** Spans and metrics of one plugin instance. */
export class Telemetry {
  readonly #api: typeof Otel
  readonly #tracer: Otel.Tracer
  readonly #meterProvider: object
  // Undefined when the meter is the API's no-op one (no SDK when the plugin was registered: the
  // metrics API has no proxy, so it stays a no-op): then no metric code runs per event at all.
  readonly #metrics: Instruments | undefined
  readonly #unknownNames = new Set<string>()
  // The event spans still open, by request: a handler timeout marks them.
  readonly #open = new WeakMap<DeliveryRequest, Set<Otel.Span>>()
  // Spans this instance started: a handler's failure is recorded on the active span only if it is one.
  readonly #ours = new WeakSet<object>()

  // `api` is @opentelemetry/api's module; typed unknown so that no declaration names the API.
  constructor (module: unknown, { tracerProvider, meterProvider }: TelemetryOptions) {
    const api = this.#api = module as typeof Otel
    this.#tracer = ((tracerProvider as Otel.TracerProvider | undefined) ?? api.trace).getTracer(INSTRUMENTATION_NAME)
    this.#meterProvider = (meterProvider as Otel.MeterProvider | undefined) ?? api.metrics.getMeterProvider()
    const meter = (this.#meterProvider as Otel.MeterProvider).getMeter(INSTRUMENTATION_NAME)
    const counter = (name: string, description: string, unit: string): Otel.Counter => meter.createCounter(name, { description, unit, valueType: api.ValueType.INT })
    if (meter === api.createNoopMeter()) return
    this.#metrics = {
      consumed: counter(METRICS.consumed, 'Events received and processed, by outcome', '{message}'),
      duration: meter.createHistogram(METRICS.duration, {
        description: 'How long an event took to process: the claim, its handlers and their record',
        unit: 's',
        advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] }
      }),
      refused: counter(METRICS.refused, 'Requests answered with an error, by status and error code', '{request}'),
      claimsHeld: meter.createObservableUpDownCounter(METRICS.claimsHeld, { description: 'Claims this process holds while their handlers run', unit: '{claim}', valueType: api.ValueType.INT }),
      stored: counter(METRICS.stored, 'Events stored in the inbox', '{message}'),
      retried: counter(METRICS.retried, 'Inbox jobs that failed and will be retried', '{message}'),
      deadLettered: counter(METRICS.deadLettered, 'Inbox jobs that failed their last attempt', '{message}'),
      fanOutFailed: counter(METRICS.fanOutFailed, 'Received entries a worker could not make jobs of (each taken again after lockDuration)', '{entry}')
    }
  }

  /**
   * Records a handler's failure on the event's span, when the handler ran inside one of this
   * instance's: called where the failure is caught (CallbackEvents' onHandlerError, the inbox
   * worker's handlers), in the handler's own async context.
   */
  readonly handlerError = (error: unknown): void => {
    const span = this.#api.trace.getActiveSpan()
    if (span === undefined || !this.#ours.has(span)) return
    // A thrown non-Error may be anything the handler had at hand: only its type is recorded.
    span.recordException(error instanceof Error ? error : { name: typeof error, message: 'a handler threw a value that is not an Error' })
  }

  /** Each event delivered in a span of its own, its outcome and duration counted. Sync stays sync. */
  observer (provider: ProviderName): ObserveDelivery {
    return (event, request, run) => this.#process(event, provider, this.#api.context.active(), undefined, undefined, request, run)
  }

  /**
   * A worker's run of an inbox job: a span that continues the request's trace from the context
   * stored with the job (and links to it, the messaging conventions' creation context), around `run`.
   */
  runJob<T extends Outcome> (event: AnyProviderCallbackEvent, stored: object | undefined, attempt: number, run: () => MaybePromise<T>): MaybePromise<T> {
    const creation = parseTraceparent((stored as Partial<JobTraceContext> | undefined)?.traceparent)
    const { trace, ROOT_CONTEXT } = this.#api
    const parent = creation === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, creation)
    return this.#process(event, event.provider, parent, creation, attempt, undefined, run)
  }

  /** The trace context to store with a job, from the span active now (the request's), if any. */
  jobContext (): JobTraceContext | undefined {
    const span = this.#api.trace.getSpanContext(this.#api.context.active())
    if (span === undefined || !this.#api.isSpanContextValid(span)) return undefined
    return { traceparent: `00-${span.traceId}-${span.spanId}-0${(span.traceFlags & 1).toString(16)}` }
  }

  /** The inbox stored an event. */
  stored (event: AnyProviderCallbackEvent): void {
    this.#metrics?.stored.add(1, this.#eventAttributes(event))
  }

  /** A job failed and has attempts left. */
  retried (event: AnyProviderCallbackEvent): void {
    this.#metrics?.retried.add(1, this.#eventAttributes(event))
  }

  /** A job failed its last attempt: it is a dead letter now. */
  deadLettered (event: AnyProviderCallbackEvent): void {
    this.#metrics?.deadLettered.add(1, this.#eventAttributes(event))
  }

  /** A worker could not make jobs of a received entry's events (BullMQ or Redis refused them). */
  fanOutFailed (): void {
    this.#metrics?.fanOutFailed.add(1, { [ATTRIBUTES.system]: MESSAGING_SYSTEM })
  }

  /** Counts a route's error answers; a handler timeout also marks the request's open event spans. */
  refused (provider: ProviderName): (request: DeliveryRequest, statusCode: number, code: string) => void {
    return (request, statusCode, code) => {
      this.#metrics?.refused.add(1, { [ATTRIBUTES.destination]: provider, [ATTRIBUTES.statusCode]: statusCode, [ATTRIBUTES.errorType]: code })
      if (code !== TIMEOUT_CODE) return
      for (const span of this.#open.get(request) ?? []) {
        span.setAttribute(ATTRIBUTES.timedOut, true)
        span.addEvent('provider_callbacks.handler_timeout')
      }
    }
  }

  /**
   * Counts `held()` in the claims held now, with the others' of the same meter provider (the
   * plugin's routes, and each inbox worker of the process), until the returned function is called (once).
   */
  observeClaims (held: () => number): () => void {
    const claimsHeld = this.#metrics?.claimsHeld
    if (claimsHeld === undefined) return () => {}
    const provider = this.#meterProvider
    let shared = claimHolders.get(provider)
    if (shared === undefined) {
      const holders = new Set<() => number>()
      const callback: Otel.ObservableCallback = result => {
        let count = 0
        for (const holder of holders) count += holder()
        result.observe(count)
      }
      claimsHeld.addCallback(callback)
      claimHolders.set(provider, shared = { holders, stop: () => { claimsHeld.removeCallback(callback) } })
    }
    const { holders, stop } = shared
    // A wrapper of its own: the same function given twice counts twice, and goes once each.
    const holder = (): number => held()
    holders.add(holder)
    return () => {
      holders.delete(holder)
      if (holders.size > 0) return
      stop()
      claimHolders.delete(provider)
    }
  }

  #process<T extends Outcome> (
    event: AnyProviderCallbackEvent, provider: ProviderName, parent: Otel.Context, creation: Otel.SpanContext | undefined,
    attempt: number | undefined, request: DeliveryRequest | undefined, run: () => MaybePromise<T>
  ): MaybePromise<T> {
    const { context, trace, SpanKind } = this.#api
    const started = this.#metrics === undefined ? 0 : performance.now()
    // Literal keys (typed as ATTRIBUTES' values, so a typo does not compile): an object of computed
    // keys costs a runtime call per key, and this runs for every event, with an SDK or without one.
    const attributes: SpanAttributes = {
      'messaging.system': MESSAGING_SYSTEM,
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': provider,
      'messaging.message.id': event.id,
      'provider_callbacks.event.name': event.name.length > MAX_NAME_LENGTH ? event.name.slice(0, MAX_NAME_LENGTH) : event.name,
      'provider_callbacks.event.known': event.known
    }
    if (attempt !== undefined) attributes[ATTRIBUTES.deliveryCount] = attempt
    const span = this.#tracer.startSpan(SPAN_NAMES[provider], creation === undefined
      ? { kind: SpanKind.CONSUMER, attributes }
      : { kind: SpanKind.CONSUMER, attributes, links: [{ context: creation }] }, parent)
    // Without an SDK the span records nothing: no context to switch to, nothing to track.
    if (!span.isRecording()) {
      const outcome = run()
      return isPromiseLike(outcome) ? outcome.then(settled => this.#end(span, event, settled, started)) : this.#end(span, event, outcome, started)
    }
    this.#ours.add(span)
    const outcome = context.with(trace.setSpan(parent, span), run)
    if (!isPromiseLike(outcome)) return this.#end(span, event, outcome, started)
    const open = request === undefined ? undefined : this.#track(request, span)
    return outcome.then(
      settled => {
        open?.delete(span)
        return this.#end(span, event, settled, started)
      },
      (error: unknown) => {
        open?.delete(span)
        span.recordException(error instanceof Error ? error : String(error))
        this.#end(span, event, 'failed', started)
        throw error
      }
    )
  }

  #track (request: DeliveryRequest, span: Otel.Span): Set<Otel.Span> {
    let open = this.#open.get(request)
    if (open === undefined) this.#open.set(request, open = new Set())
    open.add(span)
    return open
  }

  #end<T extends Outcome> (span: Otel.Span, event: AnyProviderCallbackEvent, outcome: T, started: number): T {
    const errorType = ERROR_TYPES[outcome]
    if (this.#metrics !== undefined) {
      const attributes = this.#eventAttributes(event)
      attributes[ATTRIBUTES.operationName] = 'process'
      attributes[ATTRIBUTES.outcome] = outcome
      if (errorType !== undefined) attributes[ATTRIBUTES.errorType] = errorType
      this.#metrics.consumed.add(1, attributes)
      this.#metrics.duration.record((performance.now() - started) / 1000, attributes)
    }
    if (span.isRecording()) {
      span.setAttribute(ATTRIBUTES.outcome, outcome)
      if (errorType !== undefined) {
        span.setAttribute(ATTRIBUTES.errorType, errorType)
        span.setStatus({ code: this.#api.SpanStatusCode.ERROR, message: errorType })
      }
    }
    span.end()
    return outcome
  }

  // Low cardinality only: the provider and the event's name (bounded), never an id.
  #eventAttributes (event: AnyProviderCallbackEvent): Otel.Attributes {
    return {
      [ATTRIBUTES.system]: MESSAGING_SYSTEM,
      [ATTRIBUTES.destination]: event.provider,
      [ATTRIBUTES.event]: this.#metricName(event)
    }
  }

  #metricName (event: AnyProviderCallbackEvent): string {
    if (event.known) return event.name
    const name = event.name.slice(0, MAX_NAME_LENGTH)
    if (this.#unknownNames.has(name)) return name
    if (this.#unknownNames.size >= MAX_UNKNOWN_NAMES) return OTHER_EVENT_NAME
    this.#unknownNames.add(name)
    return name
  }
}

// A W3C traceparent, as jobContext() writes it; anything else is no context (a job stored without one).
function parseTraceparent (traceparent: unknown): Otel.SpanContext | undefined {
  const match = typeof traceparent === 'string' ? /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent) : null
  if (match === null || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined
  return { traceId: match[1]!, spanId: match[2]!, traceFlags: parseInt(match[3]!, 16) & 1, isRemote: true }
}
