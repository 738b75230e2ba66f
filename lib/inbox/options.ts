import { integerOption, MAX_TIMER_DELAY, shown } from '../checks.js'
import { InvalidOptionError } from '../errors.js'

/**
 * The part of an ioredis client (5 or 6, or a Cluster) the inbox relies on; BullMQ takes the rest.
 * The host creates and closes it. A worker needs `maxRetriesPerRequest: null` on it (BullMQ
 * refuses the connection otherwise).
 */
export interface InboxConnection {
  readonly status: string
  duplicate(override?: Record<string, unknown>): InboxConnection
  connect(): Promise<void>
  disconnect(): void
  on(event: 'error', listener: (error: Error) => void): unknown
}

/** BullMQ's `backoff` job option. */
export interface InboxBackoff {
  type: 'exponential' | 'fixed'
  /** ms: the first retry's delay (exponential: doubled at each attempt). */
  delay: number
  /** 0 to 1: each delay is drawn from [delay × (1 - jitter), delay]. */
  jitter?: number
}

/** BullMQ's `removeOnComplete`/`removeOnFail` job option: how long (seconds) and how many finished jobs are kept. */
export type InboxKeepJobs = { age: number, count?: number } | { count: number }

export interface BullmqInboxOptions {
  /** An ioredis client, `maxRetriesPerRequest: null` if a worker runs on it; it stays the host's. */
  connection: InboxConnection
  /** The BullMQ queue's name. Default `'provider-callbacks'`. */
  name?: string
  /** BullMQ's key prefix. Default `'bull'`. */
  prefix?: string
  /** Runs of an event before it is dead-lettered. Default 15: with the default backoff, over about 4.5 hours. */
  attempts?: number
  /** Delay between runs. Default `{ type: 'exponential', delay: 1000, jitter: 0.5 }`. */
  backoff?: InboxBackoff
  /**
   * How long completed jobs are kept: while kept, a redelivery of their event stores nothing. Default
   * `{ age: edisWindow / 1000 }`: an EDIS event id (`edis:<kvm>:<trigger_value>`) comes again,
   * legitimately, once the window is over, and must then be a new job.
   */
  removeOnComplete?: InboxKeepJobs
  /** How long dead letters are kept. Default `{ age: 7 days }`; until then a redelivery of their event stores nothing new. */
  removeOnFail?: InboxKeepJobs
  /** ms a claim lives unless refreshed (the claim protocol's, as `idempotency.claimTtl`). Default 30 s. */
  claimTtl?: number
  /** ms a done EDIS event is remembered by the claim protocol. Default 24 h. */
  edisWindow?: number
  /** ms a done Voximplant event is remembered by the claim protocol. Default 7 days. */
  voximplantWindow?: number
  /** ms a request waits for Redis to acknowledge its events before the answer is a 503. Default 5 s. */
  addTimeout?: number
  /**
   * Prefix of the claim protocol's keys (each event's claim, then its done record). Default
   * `<prefix>:<name>:provider-callbacks:`, so two inboxes on one Redis never share an event. Replicas
   * without an inbox whose `redisStore` must see the same done records (a rolling migration to the
   * inbox): give this the redisStore's prefix (`'provider-callbacks:'` by default).
   */
  claimPrefix?: string
}

export interface InboxSettings {
  name: string
  prefix: string
  attempts: number
  backoff: InboxBackoff
  removeOnComplete: InboxKeepJobs
  removeOnFail: InboxKeepJobs
  claimTtl: number
  windows: { edis: number, voximplant: number }
  addTimeout: number
  claimPrefix: string
}

const SECOND = 1000
const HOUR = 3600 * SECOND
const DAY = 24 * HOUR

export function resolveInboxOptions (options: BullmqInboxOptions): InboxSettings {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('bullmqInbox needs options: { connection }')
  const { connection } = options
  if (typeof connection?.duplicate !== 'function') {
    throw new InvalidOptionError('bullmqInbox connection must be an ioredis client (new Redis(url, { maxRetriesPerRequest: null }))')
  }
  const prefix = options.prefix ?? 'bull'
  if (typeof prefix !== 'string' || prefix === '') throw new InvalidOptionError(`bullmqInbox prefix must be a non-empty string, got ${JSON.stringify(prefix)}`)
  const common = resolveCommonOptions(options, 'bullmqInbox')
  return { ...common, prefix, claimPrefix: claimPrefixOf(options.claimPrefix, prefix, common.name) }
}

/** The options every inbox takes, whatever it stores its jobs in. */
export type CommonInboxOptions = Pick<BullmqInboxOptions, 'name' | 'attempts' | 'backoff' | 'removeOnComplete' | 'removeOnFail' | 'claimTtl' | 'edisWindow' | 'voximplantWindow' | 'addTimeout'>

/** The settings every inbox has: those of InboxSettings but the Redis keys' prefixes. */
export type CommonInboxSettings = Omit<InboxSettings, 'prefix' | 'claimPrefix'>

/** `who`: the function the options were given to, for the messages. */
export function resolveCommonOptions (options: CommonInboxOptions, who: string): CommonInboxSettings {
  const name = options.name ?? 'provider-callbacks'
  if (typeof name !== 'string' || name === '' || name.includes(':')) throw new InvalidOptionError(`${who} name must be a non-empty string without ':', got ${JSON.stringify(name)}`)
  const positive = (value: unknown, option: string): number => integerOption(value, `${who} ${option}`, { max: MAX_TIMER_DELAY })
  const edis = positive(options.edisWindow ?? DAY, 'edisWindow')
  return {
    name,
    attempts: positive(options.attempts ?? 15, 'attempts'),
    backoff: backoffOf(options.backoff ?? { type: 'exponential', delay: SECOND, jitter: 0.5 }, who),
    removeOnComplete: keepJobs(options.removeOnComplete ?? { age: Math.ceil(edis / SECOND) }, 'removeOnComplete', who),
    removeOnFail: keepJobs(options.removeOnFail ?? { age: 7 * DAY / SECOND }, 'removeOnFail', who),
    claimTtl: positive(options.claimTtl ?? 30 * SECOND, 'claimTtl'),
    windows: { edis, voximplant: positive(options.voximplantWindow ?? 7 * DAY, 'voximplantWindow') },
    addTimeout: positive(options.addTimeout ?? 5 * SECOND, 'addTimeout')
  }
}

function claimPrefixOf (claimPrefix: unknown, prefix: string, name: string): string {
  if (claimPrefix === undefined) return `${prefix}:${name}:provider-callbacks:`
  if (typeof claimPrefix !== 'string' || claimPrefix === '') throw new InvalidOptionError(`bullmqInbox claimPrefix must be a non-empty string, got ${shown(claimPrefix)}`)
  return claimPrefix
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

// These are set on every job: BullMQ checks some only at each add (a jitter outside 0..1 fails every
// add, so no event is ever stored) and takes others as they come (an unknown key, a NaN, a negative
// count keep finished jobs for ever), so each is checked here, once, where the mistake was made.
function backoffOf (backoff: unknown, who: string): InboxBackoff {
  if (!isObject(backoff) || (backoff.type !== 'exponential' && backoff.type !== 'fixed')) {
    throw new InvalidOptionError(`${who} backoff must be { type: 'exponential' | 'fixed', delay: ms, jitter? }, got ${shown(backoff)}`)
  }
  unknownKeys(backoff, ['type', 'delay', 'jitter'], 'backoff', who)
  const { type, delay, jitter } = backoff
  if (!Number.isSafeInteger(delay) || (delay as number) < 0) {
    throw new InvalidOptionError(`${who} backoff.delay must be an integer of ms, 0 or more, got ${shown(delay)}`)
  }
  if (jitter === undefined) return { type, delay: delay as number }
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new InvalidOptionError(`${who} backoff.jitter must be a number from 0 to 1, got ${shown(jitter)}`)
  }
  return { type, delay: delay as number, jitter }
}

function keepJobs (keep: unknown, name: string, who: string): InboxKeepJobs {
  if (!isObject(keep) || (keep.age === undefined && keep.count === undefined)) {
    throw new InvalidOptionError(`${who} ${name} must be { age: seconds, count? } or { count }, got ${shown(keep)}`)
  }
  unknownKeys(keep, ['age', 'count'], name, who)
  const kept: Record<string, number> = {}
  for (const key of ['age', 'count'] as const) {
    const value = keep[key]
    if (value === undefined) continue
    if (!Number.isSafeInteger(value) || (value as number) < 0) {
      throw new InvalidOptionError(`${who} ${name}.${key} must be an integer, 0 or more, got ${shown(value)}`)
    }
    kept[key] = value as number
  }
  return kept as InboxKeepJobs
}

function unknownKeys (value: Record<string, unknown>, known: readonly string[], name: string, who: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new InvalidOptionError(`${who} ${name} has no option ${JSON.stringify(key)} (it takes ${known.join(', ')})`)
  }
}
