import type { FastifyRequest } from 'fastify'
import type { DeliveryRequest } from './delivery/outcome.js'
import type { AnyProviderCallbackEvent, ProviderCallbackEventName, ProviderCallbackEvents } from './event-types.js'
import { voximplantEventNames } from './voximplant/schema.js'
import { InvalidOptionError } from './errors.js'
import type { HandlerContext, ProviderCallbacksTypes } from './handler-context.js'
import { isPromiseLike, type MaybePromise } from './maybe-promise.js'

/** A handler's second argument: the request that brought the event, or `undefined` from an inbox. */
export type HandlerRequest = ProviderCallbacksTypes extends { inbox: true } ? undefined : FastifyRequest

/**
 * A handler: the event, the request that brought it (absent when it runs from an inbox), and
 * `{ signal }`, aborted when this run can no longer be vouched for (its claim lost, or the app
 * closing past its grace period).
 */
export type ProviderCallbackHandler<Event = AnyProviderCallbackEvent> =
  (event: Event, request: HandlerRequest, context: HandlerContext) => void | Promise<void>

/** The `handlers` option: one handler per event name, the same as calling `on(name, handler)`. */
export type ProviderCallbackHandlers = {
  [Name in ProviderCallbackEventName]?: ProviderCallbackHandler<ProviderCallbackEvents[Name]>
}

// As stored: whether a handler's request is typed FastifyRequest or (an app with an inbox)
// undefined, it gets what this delivery has.
type Handler = (event: AnyProviderCallbackEvent, request: any, context: HandlerContext) => void | Promise<void>

/** Every event name this version knows: `on()` refuses any other. */
export const KNOWN_EVENT_NAMES: readonly string[] = ['traffic-threshold', ...voximplantEventNames]

/**
 * Where host code subscribes to events: `app.providerCallbacks` is one (with the inbox beside).
 * An interface, not the class: a program that loads both the ESM and the CJS build then sees one
 * type, not two.
 */
export interface CallbackSubscriptions {
  /** Runs `handler` for every event called `name`. */
  on<Name extends ProviderCallbackEventName>(name: Name, handler: ProviderCallbackHandler<ProviderCallbackEvents[Name]>): this
  /** Stops running `handler` for `name`. */
  off<Name extends ProviderCallbackEventName>(name: Name, handler: ProviderCallbackHandler<ProviderCallbackEvents[Name]>): this
  /** Runs `handler` for every event, whatever its name. */
  onAny(handler: ProviderCallbackHandler): this
  /** Stops running an `onAny` handler. */
  offAny(handler: ProviderCallbackHandler): this
}

export interface CallbackEventsOptions {
  /** Told of every handler's failure, in the handler's own async context (telemetry records it on the event's span). */
  onHandlerError?: ((error: unknown) => void) | undefined
}

/**
 * The handlers of every event, and their delivery. Handler lists are replaced, never mutated, so
 * a delivery in progress keeps the list it started with.
 */
export class CallbackEvents implements CallbackSubscriptions {
  readonly #known: ReadonlySet<string>
  readonly #byName = new Map<string, readonly Handler[]>()
  #any: readonly Handler[] = []
  #observers: ReadonlyArray<(event: AnyProviderCallbackEvent) => void> = []
  readonly #onHandlerError: ((error: unknown) => void) | undefined

  /** The test kit's: sees every event handed to handlers, without being one (see observeDeliveries). */
  observe (observer: (event: AnyProviderCallbackEvent) => void): () => void {
    this.#observers = [...this.#observers, observer]
    return () => { this.#observers = this.#observers.filter(o => o !== observer) }
  }

  constructor (knownEventNames: Iterable<string> = KNOWN_EVENT_NAMES, { onHandlerError }: CallbackEventsOptions = {}) {
    this.#known = new Set(knownEventNames)
    this.#onHandlerError = onHandlerError
  }

  on<Name extends ProviderCallbackEventName>(name: Name, handler: ProviderCallbackHandler<ProviderCallbackEvents[Name]>): this {
    this.#assertKnown(name)
    assertFunction(handler, `the handler for '${name}'`)
    this.#byName.set(name, [...this.#byName.get(name) ?? [], handler as Handler])
    return this
  }

  off<Name extends ProviderCallbackEventName>(name: Name, handler: ProviderCallbackHandler<ProviderCallbackEvents[Name]>): this {
    const rest = (this.#byName.get(name) ?? []).filter(h => h !== handler)
    if (rest.length === 0) this.#byName.delete(name)
    else this.#byName.set(name, rest)
    return this
  }

  onAny (handler: ProviderCallbackHandler): this {
    assertFunction(handler, 'the onAny handler')
    this.#any = [...this.#any, handler as Handler]
    return this
  }

  offAny (handler: ProviderCallbackHandler): this {
    this.#any = this.#any.filter(h => h !== handler)
    return this
  }

  /**
   * Whether anything listens for the event, so nothing is claimed or run for events nobody reads.
   * An event of a type this version does not know (`known` false) is for onAny listeners only,
   * even if its name happens to be a known one.
   */
  hasListeners (event: AnyProviderCallbackEvent): boolean {
    return this.#any.length > 0 || (event.known && this.#byName.has(event.name))
  }

  /** The handlers the event goes to now: its name's, then onAny's (the inbox's worker runs them itself). */
  handlersOf (event: AnyProviderCallbackEvent): readonly Handler[] {
    const named = event.known ? this.#byName.get(event.name) : undefined
    return named === undefined ? this.#any : [...named, ...this.#any]
  }

  /**
   * Runs every handler of the event at once and waits for all of them. A failure is logged with the
   * event's id and makes the result false; it never stops the other handlers. Handlers that return
   * no promise are done when they return: the result is then given at once.
   */
  deliver (event: AnyProviderCallbackEvent, request: DeliveryRequest, context: HandlerContext): MaybePromise<boolean> {
    for (const observe of this.#observers) observe(event)
    const named = event.known ? this.#byName.get(event.name) : undefined
    const any = this.#any
    const onError = this.#onHandlerError
    // One handler, the common case: no arrays per event.
    if (named === undefined && any.length === 1) return run(any[0]!, event, request, context, onError)
    if (named?.length === 1 && any.length === 0) return run(named[0]!, event, request, context, onError)
    const results = [...named ?? [], ...any].map(handler => run(handler, event, request, context, onError))
    if (!results.some(isPromiseLike)) return !results.includes(false)
    return Promise.all(results).then(settled => !settled.includes(false))
  }

  #assertKnown (name: string): void {
    if (!this.#known.has(name)) {
      throw new InvalidOptionError(`unknown event name '${name}'; known names: ${[...this.#known].join(', ')}. Use onAny() for events of types this version does not know.`)
    }
  }
}

/**
 * Calls `observer` with every event handed to the app's handlers, until the returned function is
 * called. Not a listener: what runs, and what the store records, is what it would be without it.
 */
export function observeDeliveries (callbacks: CallbackSubscriptions, observer: (event: AnyProviderCallbackEvent) => void): () => void {
  // A method, not a private symbol: the test kit and the plugin may come from two builds (ESM and
  // CJS) of the package, and still meet. It is not on the CallbackSubscriptions type.
  return (callbacks as CallbackEvents).observe(observer)
}

type OnError = ((error: unknown) => void) | undefined

// A failure is logged with the event's id and reported as false; it never stops other handlers.
function run (handler: Handler, event: AnyProviderCallbackEvent, request: DeliveryRequest, context: HandlerContext, onError: OnError): MaybePromise<boolean> {
  try {
    const result = handler(event, request, context)
    // Inside the try: looking at a returned object's `then` runs its getter, which may throw.
    if (!isPromiseLike(result)) return true
    return Promise.resolve(result).then(() => true, (error: unknown) => reportHandlerFailure(error, event, request, onError))
  } catch (error) {
    return reportHandlerFailure(error, event, request, onError)
  }
}

/**
 * A handler's failure, as every delivery reports it (CallbackEvents' and an inbox worker's): logged
 * with the event's id, told to `onError`. Gives false, the delivery's result.
 */
export function reportHandlerFailure (error: unknown, event: AnyProviderCallbackEvent, request: DeliveryRequest, onError: OnError): false {
  request.log.error({ err: error, event: event.id }, `a '${event.name}' handler failed`)
  onError?.(error)
  return false
}

/**
 * Subscribes a `handlers` option (one handler per event name) and an `onAny` handler: the plugin's
 * options and createInboxWorker's. The names and handlers are checked by on(); their types by the caller's.
 */
export function subscribe (events: CallbackEvents, handlers: unknown, onAny?: unknown): CallbackEvents {
  if (handlers !== undefined && (typeof handlers !== 'object' || handlers === null)) {
    throw new InvalidOptionError('handlers must be an object of event name -> function')
  }
  for (const [name, handler] of Object.entries(handlers ?? {}) as Array<[ProviderCallbackEventName, ProviderCallbackHandler<any>]>) {
    events.on(name, handler)
  }
  if (onAny !== undefined) events.onAny(onAny as ProviderCallbackHandler)
  return events
}

function assertFunction (value: unknown, what: string): void {
  if (typeof value !== 'function') throw new InvalidOptionError(`${what} must be a function`)
}
