import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { edisRoutes } from './edis/route.js'
import { CallbackEvents, type ProviderCallbackEventName, type ProviderCallbackHandler, type ProviderCallbacks } from './events.js'
import { deliveries } from './idempotency/guard.js'
import { inboxDelivery } from './inbox/plugin.js'
import { resolveOptions, type ProviderCallbacksOptions } from './options.js'
import { loadTelemetry } from './telemetry.js'
import { typeboxValidatorCompiler } from './validation.js'
import { voximplantEventNames } from './voximplant/schema.js'
import { voximplantRoutes } from './voximplant/route.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Subscribe to provider callbacks: `on(name, handler)`, `off`, `onAny`, `offAny`. */
    providerCallbacks: ProviderCallbacks
  }
}

const KNOWN_EVENT_NAMES = ['traffic-threshold', ...voximplantEventNames]

const plugin: FastifyPluginAsync<ProviderCallbacksOptions> = async (fastify, options) => {
  const resolved = resolveOptions(options)
  const events = new CallbackEvents(KNOWN_EVENT_NAMES)
  // The names and handlers are checked by on(); their types by ProviderCallbackHandlers.
  for (const [name, handler] of Object.entries(options.handlers ?? {}) as Array<[ProviderCallbackEventName, ProviderCallbackHandler<any>]>) {
    events.on(name, handler)
  }
  fastify.decorate('providerCallbacks', events)

  const { edis, voximplant } = resolved
  if (edis?.unprotected === true) {
    fastify.log.warn('fastify-provider-callbacks: the EDIS route has neither credentials nor allowedIps; anyone who finds its URL can post traffic-threshold events')
  }
  // fastify-plugin ignores `prefix`, so the routes live in a child scope that takes it; that scope
  // also keeps the plugin's parsers, validator and error handler away from the host's routes.
  const { idempotency, windows, retryAfter, handlerTimeout, closeGracePeriod } = resolved
  const delivery = deliveries(events, idempotency, fastify.log)
  const telemetry = await loadTelemetry(resolved.telemetry)
  if (telemetry !== undefined) {
    const stopObserving = telemetry.observeClaims(delivery.held)
    fastify.addHook('onClose', async () => { stopObserving() })
  }
  // With an inbox, the routes store events and a worker runs them (see lib/inbox/).
  const enqueue = options.inbox === undefined ? undefined : inboxDelivery(fastify, events, options.inbox, options.worker, telemetry)
  // Without telemetry (off, or @opentelemetry/api not installed) nothing is wrapped.
  const routeOptions = (provider: 'edis' | 'voximplant') => {
    const observe = telemetry?.observer(provider)
    return { observe, enqueue, retryAfter, handlerTimeout, onErrorAnswer: telemetry?.refused(provider) }
  }
  // preClose runs before every onClose hook, so before the host's own, which closes the store's
  // client: the handlers still running (past handlerTimeout too) finish and are recorded first.
  fastify.addHook('preClose', async () => { await delivery.drain(closeGracePeriod) })
  await fastify.register(async scope => {
    scope.setValidatorCompiler(typeboxValidatorCompiler)
    if (edis !== undefined) {
      const { observe, ...rest } = routeOptions('edis')
      await scope.register(edisRoutes, { settings: edis, deliver: delivery.withWindow(windows.edis, observe), ...rest })
    }
    if (voximplant !== undefined) {
      const { observe, ...rest } = routeOptions('voximplant')
      await scope.register(voximplantRoutes, { settings: voximplant, deliver: delivery.batchWithWindow(windows.voximplant, observe), ...rest })
    }
  }, { prefix: resolved.prefix })
}

/** The plugin. Register it with `app.register(providerCallbacks, options)`. */
export const providerCallbacks = fp(plugin, { fastify: '5.x', name: 'fastify-provider-callbacks' })
export default providerCallbacks

export * from './errors.js'
export type { EdisCredentials } from './edis/credentials.js'
export { EdisTrafficThresholdSchema, EdisTrafficRequestSchema, type EdisTrafficThreshold } from './edis/schema.js'
export type {
  AnyProviderCallbackEvent, EdisEvents, UnknownEventName, UnknownVoximplantEvent, VoximplantEvents, ProviderCallbackEvent, ProviderCallbackEventName, ProviderCallbackEvents,
  ProviderCallbackHandler, ProviderCallbackHandlers, ProviderName
} from './events.js'
export type { HandlerRequest, ProviderCallbacks, ProviderCallbacksTypes } from './events.js'
export { bullmqInbox, type DeadLetter, type Inbox, type InboxQueue } from './inbox/inbox.js'
export type { BullmqInboxOptions, InboxBackoff, InboxConnection, InboxKeepJobs } from './inbox/options.js'
export { createInboxWorker, type DeadLettered, type InboxHandler, type InboxHandlers, type InboxWorker, type InboxWorkerOptions } from './inbox/worker.js'
export type { InboxWorkerOption } from './inbox/plugin.js'
export { UnrecoverableError } from './inbox/errors.js'
export type { HandlerContext } from './handler-context.js'
export type { EdisOptions, IdempotencyOptions, ProviderCallbacksOptions, VoximplantOptions } from './options.js'
export type { JobTraceContext, MeterProviderLike, TelemetryOptions, TracerProviderLike } from './telemetry.js'
export { memoryStore, type MemoryStoreOptions } from './idempotency/memory.js'
export { redisStore, type RedisClientLike, type RedisStore, type RedisStoreOptions } from './idempotency/redis.js'
export type { ClaimResult, IdempotencyStore, KeyOwner } from './idempotency/store.js'
export type { MaybePromise } from './maybe-promise.js'
export type { VoximplantSecret } from './voximplant/hash.js'
export type { ScopedVoximplantSecret, VoximplantSecretLookup } from './voximplant/secrets.js'
export {
  VoximplantCallbackSchemas, VoximplantCommonFieldsSchema, VoximplantUnknownCallbackSchema, voximplantBatchSchema,
  type VoximplantCallback, type VoximplantCallbackSchema, type VoximplantCallbackType, type VoximplantUnknownCallback
} from './voximplant/schema.js'
export { voximplantPayloads } from './voximplant/payloads.js'
// MinBalanceCallback, InboundSmsCallback, …: a type per payload, named as the Voximplant SDKs name it.
export * from './voximplant/payload-types.js'
// Setting the providers up to call the routes: EDIS hooks, Voximplant's webhook.
export { edisHooks, type EdisHook, type EdisHooks, type EdisHookSettings, type EdisHooksOptions } from './provision/edis.js'
export { ProvisionError, type ProvisionHttpOptions } from './provision/http.js'
export {
  VoximplantKeyFileSchema, voximplantWebhook,
  type VoximplantKeyFile, type VoximplantWebhook, type VoximplantWebhookOptions, type VoximplantWebhookState
} from './provision/voximplant.js'
