import { integerOption, shown, timerDelay } from './checks.js'
import { InvalidOptionError } from './errors.js'
import { credentialsCheck, type EdisCredentials } from './edis/credentials.js'
import type { EdisRouteSettings } from './edis/route.js'
import { sourceCheck } from './source.js'
import type { ProviderCallbackHandlers } from './events.js'
import type { Inbox } from './inbox/inbox.js'
import type { InboxWorkerOption } from './inbox/plugin.js'
import type { IdempotencySettings } from './delivery/deliveries.js'
import { memoryStore } from './idempotency/memory.js'
import type { IdempotencyStore, TransactionalStore } from './idempotency/store.js'
import { resolveTelemetry, type TelemetryOptions } from './telemetry.js'
import type { VoximplantRouteSettings } from './voximplant/route.js'
import { lookedUpSecrets, staticSecrets, type ScopedVoximplantSecret, type VoximplantSecretLookup } from './voximplant/secrets.js'

export interface EdisOptions {
  /** Route path under `prefix`. Default `'/edis'`. */
  path?: string
  /** `callback_user`/`callback_pw` of the hook; several during a rotation. */
  credentials?: EdisCredentials | readonly EdisCredentials[]
  /** Addresses or CIDR ranges callbacks may come from, matched against `request.ip`. */
  allowedIps?: readonly string[]
  /** Largest body accepted, in bytes. Default 16 KiB; EDIS sends about a hundred bytes. */
  bodyLimit?: number
}

export interface VoximplantOptions {
  /** Route path under `prefix`. Default `'/voximplant'`. */
  path?: string
  /** `{ apiKey, salt }`; several during a rotation; each optionally limited to one `accountId`. */
  secret?: ScopedVoximplantSecret | readonly ScopedVoximplantSecret[]
  /** Looks up an account's secret(s) instead: called once per account in a batch. */
  getSecret?: VoximplantSecretLookup
  /** Addresses or CIDR ranges callbacks may come from, matched against `request.ip`. */
  allowedIps?: readonly string[]
  /** Largest body accepted, in bytes. Default 1 MiB. */
  bodyLimit?: number
  /** Most callbacks accepted in one batch. Default 1000. */
  maxItems?: number
}

export interface IdempotencyOptions {
  /** Where claims and done events are kept. Default `memoryStore()`: one process only. */
  store?: IdempotencyStore
  /** How long a claim lives without a refresh, in ms: how soon a crashed replica's event may run elsewhere. Default 30 s. */
  claimTtl?: number
  /** How long a done EDIS event is remembered, in ms: EDIS sends no delivery id, so `kvm` + `trigger_value` within this window is one event. Default 24 h. */
  edisWindow?: number
  /** How long a done Voximplant event is remembered, in ms. Default 7 days. */
  voximplantWindow?: number
  /** When the store cannot be reached, run handlers unguarded (duplicates possible) instead of answering 503. Default false. */
  failOpen?: boolean
  /**
   * Exactly-once effects: each event's handlers get `context.tx`, a client inside an open
   * transaction of the store's database, and the done mark is written in that transaction, so
   * their writes through `tx` and the mark commit together or not at all. Needs a transactional
   * store (`postgresStore`); type `tx` with `ProviderCallbacksTypes` (docs/guarantee.md). Default false.
   */
  transactional?: boolean
}

export interface ProviderCallbacksOptions {
  /** Prefix of every route. Default `'/callbacks'`. */
  prefix?: string
  /** EDIS Global's traffic-threshold hook; `false` or omitted: no route. */
  edis?: EdisOptions | false
  /** Voximplant's account callbacks; `false` or omitted: no route. */
  voximplant?: VoximplantOptions | false
  /** Handlers by event name, the same as `app.providerCallbacks.on(name, handler)`. */
  handlers?: ProviderCallbackHandlers
  /** Each event's handlers run to success once. Default: on, in memory; `false` turns it off. */
  idempotency?: IdempotencyOptions | false
  /**
   * How long a request waits for its handlers, in ms. Past it the answer is a 503 with Retry-After
   * and the handlers go on; with idempotency on, the provider's retry then finds the event in
   * flight (409) or done (200), never runs it twice. Default 10 s; `false` waits as long as they run.
   */
  handlerTimeout?: number | false
  /**
   * How long `app.close()` waits, in ms, for handlers still running (those past handlerTimeout
   * too) and the record of their success, before it aborts their signals and lets the host close
   * the store's client. Default 10 s.
   */
  closeGracePeriod?: number
  /**
   * OpenTelemetry spans and metrics (docs/telemetry.md), recorded through
   * `@opentelemetry/api` when it is installed: by the SDK the host registered, or by the
   * `tracerProvider`/`meterProvider` given here. Default: on (a no-op until an SDK is there);
   * `false` turns it off, and the API is then not even loaded.
   */
  telemetry?: TelemetryOptions | false
  /**
   * A durable inbox (`bullmqInbox`): each request's verified events are stored, answered 200 once
   * Redis acknowledged them, and run by a worker with retries and dead letters. `idempotency` and
   * `handlerTimeout` then apply to no request; the inbox has its own windows.
   */
  inbox?: Inbox
  /** With an inbox: a worker in this process (default `true`, or its settings), or `false` for an API-only replica. */
  worker?: InboxWorkerOption
}

export interface ResolvedOptions {
  prefix: string
  edis?: EdisRouteSettings & { unprotected: boolean }
  voximplant?: VoximplantRouteSettings
  /** Undefined when idempotency is off. */
  idempotency?: IdempotencySettings | undefined
  windows: { edis: number, voximplant: number }
  /** Seconds, for the Retry-After of a 409 or 503. */
  retryAfter: number
  /** ms; undefined: no limit. */
  handlerTimeout: number | undefined
  /** ms */
  closeGracePeriod: number
  /** Undefined when telemetry is off. */
  telemetry: TelemetryOptions | undefined
}

const SECOND = 1000
const HOUR = 3600 * SECOND

export const DEFAULT_EDIS_BODY_LIMIT = 16 * 1024
export const DEFAULT_VOXIMPLANT_BODY_LIMIT = 1024 * 1024
export const DEFAULT_VOXIMPLANT_MAX_ITEMS = 1000

/** Checks the options once, at registration, and turns them into what the routes run on. */
export function resolveOptions (options: ProviderCallbacksOptions): ResolvedOptions {
  const prefix = options.prefix ?? '/callbacks'
  if (typeof prefix !== 'string' || (prefix !== '' && !prefix.startsWith('/'))) {
    throw new InvalidOptionError(`prefix must be '' or a path starting with '/', got ${JSON.stringify(prefix)}`)
  }
  const edis = providerOption(options.edis, 'edis')
  const voximplant = providerOption(options.voximplant, 'voximplant')
  if (edis === undefined && voximplant === undefined) {
    throw new InvalidOptionError('no provider is enabled: set edis: {} and/or voximplant: { secret } to receive callbacks')
  }
  const idempotency = options.idempotency === false ? undefined : providerOption(options.idempotency ?? {}, 'idempotency')!
  const claimTtl = timerDelay(idempotency?.claimTtl ?? 30 * SECOND, 'idempotency.claimTtl')
  if (idempotency?.store !== undefined && !isStore(idempotency.store)) {
    throw new InvalidOptionError('idempotency.store must have claim, complete and release methods (see IdempotencyStore)')
  }
  const transactional = idempotency?.transactional ?? false
  if (typeof transactional !== 'boolean') throw new InvalidOptionError(`idempotency.transactional must be true or false, got ${shown(transactional)}`)
  if (transactional && typeof (idempotency?.store as Partial<TransactionalStore> | undefined)?.begin !== 'function') {
    throw new InvalidOptionError('idempotency.transactional needs a store that opens transactions, such as postgresStore(pool)')
  }
  // Unguarded handlers would run without their transaction.
  if (transactional && idempotency?.failOpen === true) throw new InvalidOptionError('idempotency.transactional and idempotency.failOpen cannot be used together: a handler run unguarded has no transaction')
  return {
    prefix,
    edis: edis && resolveEdis(edis),
    voximplant: voximplant && resolveVoximplant(voximplant),
    idempotency: idempotency && { store: idempotency.store ?? memoryStore(), claimTtl, failOpen: idempotency.failOpen === true, transactional },
    windows: {
      edis: integerOption(idempotency?.edisWindow ?? 24 * HOUR, 'idempotency.edisWindow'),
      voximplant: integerOption(idempotency?.voximplantWindow ?? 7 * 24 * HOUR, 'idempotency.voximplantWindow')
    },
    retryAfter: Math.ceil(claimTtl / SECOND),
    handlerTimeout: options.handlerTimeout === false ? undefined : timerDelay(options.handlerTimeout ?? 10 * SECOND, 'handlerTimeout'),
    closeGracePeriod: timerDelay(options.closeGracePeriod ?? 10 * SECOND, 'closeGracePeriod'),
    telemetry: resolveTelemetry(options.telemetry)
  }
}

function isStore (store: unknown): store is IdempotencyStore {
  const { claim, complete, release } = (typeof store === 'object' && store !== null ? store : {}) as Partial<IdempotencyStore>
  return typeof claim === 'function' && typeof complete === 'function' && typeof release === 'function'
}

// A provider (or idempotency) is on when its key holds an object; omitted or false, it is off.
function providerOption<T> (value: T | false | undefined, name: string): T | undefined {
  if (value === undefined || value === false) return undefined
  if (typeof value !== 'object' || value === null) throw new InvalidOptionError(`${name} must be an object or false`)
  return value
}

function resolveVoximplant (voximplant: VoximplantOptions): VoximplantRouteSettings {
  const { secret, getSecret } = voximplant
  if ((secret === undefined) === (getSecret === undefined)) {
    throw new InvalidOptionError('voximplant needs either secret ({ apiKey, salt }) or getSecret(accountId, request), and not both')
  }
  if (getSecret !== undefined && typeof getSecret !== 'function') throw new InvalidOptionError('voximplant.getSecret must be a function')
  return {
    path: checkPath(voximplant.path ?? '/voximplant', 'voximplant.path'),
    bodyLimit: integerOption(voximplant.bodyLimit ?? DEFAULT_VOXIMPLANT_BODY_LIMIT, 'voximplant.bodyLimit'),
    maxItems: integerOption(voximplant.maxItems ?? DEFAULT_VOXIMPLANT_MAX_ITEMS, 'voximplant.maxItems'),
    secretsOf: getSecret !== undefined ? lookedUpSecrets(getSecret) : staticSecrets(secret),
    isAllowedSource: voximplant.allowedIps === undefined ? undefined : sourceCheck(voximplant.allowedIps, 'voximplant.allowedIps')
  }
}

function resolveEdis (edis: EdisOptions): NonNullable<ResolvedOptions['edis']> {
  const path = checkPath(edis.path ?? '/edis', 'edis.path')
  const bodyLimit = integerOption(edis.bodyLimit ?? DEFAULT_EDIS_BODY_LIMIT, 'edis.bodyLimit')
  let areValidCredentials
  if (edis.credentials !== undefined) {
    const list = [edis.credentials].flat()
    if (list.length === 0) throw new InvalidOptionError('edis.credentials must not be an empty array; omit it to accept callbacks without credentials')
    list.forEach((c, i) => {
      for (const field of ['username', 'password'] as const) {
        if (typeof c?.[field] !== 'string' || c[field] === '') {
          throw new InvalidOptionError(`edis.credentials[${i}].${field} must be a non-empty string`)
        }
      }
    })
    areValidCredentials = credentialsCheck(list)
  }
  let isAllowedSource
  if (edis.allowedIps !== undefined) isAllowedSource = sourceCheck(edis.allowedIps, 'edis.allowedIps')
  return {
    path,
    bodyLimit,
    areValidCredentials,
    isAllowedSource,
    unprotected: areValidCredentials === undefined && isAllowedSource === undefined
  }
}

function checkPath (path: unknown, name: string): string {
  if (typeof path !== 'string' || !/^\/./.test(path)) {
    throw new InvalidOptionError(`${name} must be a non-empty path starting with '/', got ${JSON.stringify(path)}`)
  }
  return path
}
