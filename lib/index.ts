import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { deliveries } from './delivery/deliveries.js'
import type { Deliver, DeliverBatch } from './delivery/outcome.js'
import { answeredWithin } from './delivery/timeout.js'
import { edisRoutes } from './edis/route.js'
import { CallbackEvents, KNOWN_EVENT_NAMES, subscribe, type CallbackSubscriptions } from './events.js'
import type { ProviderCallbacksTypes } from './handler-context.js'
import type { Inbox } from './inbox/inbox.js'
import { inboxDelivery } from './inbox/plugin.js'
import { resolveOptions, type ProviderCallbacksOptions } from './options.js'
import { loadTelemetry } from './telemetry.js'
import { typeboxValidatorCompiler } from './validation.js'
import { voximplantRoutes } from './voximplant/route.js'

/**
 * The `app.providerCallbacks` decorator: where host code subscribes to events, and the inbox's
 * dead letters and replay when the plugin has an `inbox`.
 */
export interface ProviderCallbacks extends CallbackSubscriptions {
  readonly inbox: ProviderCallbacksTypes extends { inbox: true } ? Inbox : Inbox | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Subscribe to provider callbacks: `on(name, handler)`, `off`, `onAny`, `offAny`. */
    providerCallbacks: ProviderCallbacks
  }
}

const plugin: FastifyPluginAsync<ProviderCallbacksOptions> = async (fastify, options) => {
  const resolved = resolveOptions(options)
  const { edis, voximplant, idempotency, windows, retryAfter, handlerTimeout, closeGracePeriod } = resolved
  // Without telemetry (off, or @opentelemetry/api not installed) nothing is wrapped.
  const telemetry = await loadTelemetry(resolved.telemetry)
  const events = subscribe(new CallbackEvents(KNOWN_EVENT_NAMES, { onHandlerError: telemetry?.handlerError }), options.handlers)
  const inbox = options.inbox
  fastify.decorate('providerCallbacks', Object.assign(events, { inbox: inbox as ProviderCallbacks['inbox'] }))
  if (edis?.unprotected === true) {
    fastify.log.warn('fastify-provider-callbacks: the EDIS route has neither credentials nor allowedIps; anyone who finds its URL can post traffic-threshold events')
  }

  // Chosen once, for both providers: with an inbox the routes store events and a worker runs
  // them (lib/inbox/); without, the routes run the handlers, guarded and bounded by handlerTimeout.
  let deliverEdis: Deliver
  let deliverVoximplant: DeliverBatch
  if (inbox !== undefined) {
    deliverVoximplant = inboxDelivery(fastify, events, inbox, options.worker, telemetry)
    deliverEdis = (event, request) => deliverVoximplant([event], request)
  } else {
    const delivery = deliveries(events, idempotency, fastify.log)
    if (telemetry !== undefined) {
      const stopObserving = telemetry.observeClaims(delivery.held)
      fastify.addHook('onClose', async () => { stopObserving() })
    }
    // preClose runs before every onClose hook, so before the host's own, which closes the store's
    // client: the handlers still running (past handlerTimeout too) finish and are recorded first.
    fastify.addHook('preClose', async () => { await delivery.drain(closeGracePeriod) })
    deliverEdis = answeredWithin(delivery.withWindow(windows.edis, telemetry?.observer('edis')), handlerTimeout, retryAfter)
    deliverVoximplant = answeredWithin(delivery.batchWithWindow(windows.voximplant, telemetry?.observer('voximplant')), handlerTimeout, retryAfter)
  }

  // fastify-plugin ignores `prefix`, so the routes live in a child scope that takes it; that scope
  // also keeps the plugin's parsers, validator and error handler away from the host's routes.
  await fastify.register(async scope => {
    scope.setValidatorCompiler(typeboxValidatorCompiler)
    if (edis !== undefined) {
      await scope.register(edisRoutes, { settings: edis, deliver: deliverEdis, retryAfter, onErrorAnswer: telemetry?.refused('edis') })
    }
    if (voximplant !== undefined) {
      await scope.register(voximplantRoutes, { settings: voximplant, deliver: deliverVoximplant, retryAfter, onErrorAnswer: telemetry?.refused('voximplant') })
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
  ProviderName
} from './event-types.js'
export type { CallbackSubscriptions, HandlerRequest, ProviderCallbackHandler, ProviderCallbackHandlers } from './events.js'
export { bullmqInbox, type DeadLetter, type DeadLettered, type Inbox, type InboxQueue } from './inbox/inbox.js'
export type { BullmqInboxOptions, InboxBackoff, InboxConnection, InboxKeepJobs } from './inbox/options.js'
export { postgresInbox, type PostgresInboxConnection, type PostgresInboxOptions } from './inbox/postgres-inbox.js'
export { createInboxWorker, type InboxWorkerOptions } from './create-inbox-worker.js'
export type { InboxHandler, InboxHandlers, InboxWorker } from './inbox/worker.js'
export type { InboxWorkerOption } from './inbox/plugin.js'
export { UnrecoverableError } from './inbox/errors.js'
export type { HandlerContext, ProviderCallbacksTypes, SignalContext, TransactionContext } from './handler-context.js'
export type { EdisOptions, IdempotencyOptions, ProviderCallbacksOptions, VoximplantOptions } from './options.js'
export type { JobTraceContext, MeterProviderLike, TelemetryOptions, TracerProviderLike } from './telemetry.js'
export { memoryStore, type MemoryStoreOptions } from './idempotency/memory.js'
export { redisStore, type RedisClientLike, type RedisStore, type RedisStoreOptions } from './idempotency/redis.js'
export {
  postgresStore, postgresStoreSchema, type PostgresClientLike, type PostgresPoolLike, type PostgresResult, type PostgresStore, type PostgresStoreOptions
} from './idempotency/postgres.js'
export type { ClaimResult, IdempotencyStore, KeyOwner, StoreTransaction, TransactionalStore } from './idempotency/store.js'
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
