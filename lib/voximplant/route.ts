import type { FastifyInstance, FastifyRequest, onRequestHookHandler, preValidationHookHandler } from 'fastify'
import sjson from 'secure-json-parse'
import { numberCoercion } from '../coerce.js'
import { BatchTooLargeError, InternalError, MalformedBodyError, UnauthorizedError } from '../errors.js'
import type { AnyProviderCallbackEvent } from '../event-types.js'
import type { DeliverBatch } from '../delivery/outcome.js'
import { isPromiseLike, then, type MaybePromise } from '../maybe-promise.js'
import { answerFor, errorHandler, replySchemas, type ErrorAnswerObserver, type SUCCESS } from '../replies.js'
import { refuseOtherMethods } from '../method-not-allowed.js'
import { sourceHook } from '../source.js'
import { isSignedBy, type VoximplantSecret } from './hash.js'
import {
  kebab, nestedPayloadTypes, VoximplantCallbackSchemas, VoximplantCommonFieldsSchema, voximplantBatchSchema,
  type VoximplantCallback, type VoximplantUnknownCallback
} from './schema.js'
import type { SecretsOf } from './secrets.js'

// Voximplant's docs say only "a JSON-encoded body"; text/plain is taken too in case that is how it
// labels it. Anything else is a 415.
const JSON_TYPES = ['application/json', 'text/plain']

export interface VoximplantRouteSettings {
  path: string
  bodyLimit: number
  maxItems: number
  secretsOf: SecretsOf
  isAllowedSource?: ((ip: string) => boolean) | undefined
}

interface VoximplantRouteOptions {
  settings: VoximplantRouteSettings
  /** What becomes of the batch's events: their handlers run now, or they are stored in the inbox, all in one go (lib/index.ts chooses). */
  deliver: DeliverBatch
  /** Seconds, for the Retry-After of a 409 or 503. */
  retryAfter: number
  /** Told of every error answer (telemetry's count of refused requests). */
  onErrorAnswer?: ErrorAnswerObserver | undefined
}

type Item = Record<string, unknown>
type Batch = { callbacks: Array<VoximplantCallback | VoximplantUnknownCallback> }

// Every item schema has numbers (callback_id, account_id, balance), so each has a coercion.
const coercions = new Map(Object.entries(VoximplantCallbackSchemas).map(([type, schema]) => [type, numberCoercion(schema)!]))
const coerceCommonFields = numberCoercion(VoximplantCommonFieldsSchema)!
const eventNames = new Map(Object.keys(VoximplantCallbackSchemas).map(type => [type, kebab(type)]))

/** POST `<prefix><path>`: Voximplant's account callbacks, in a scope of their own. */
export async function voximplantRoutes (scope: FastifyInstance, { settings, deliver, retryAfter, onErrorAnswer }: VoximplantRouteOptions): Promise<void> {
  const { bodyLimit, maxItems, secretsOf, isAllowedSource } = settings
  scope.removeAllContentTypeParsers()
  // Read as bytes and decoded here: with `parseAs: 'string'`, Fastify before 5.12 answers bytes
  // that are not UTF-8 with a content-length 400 rather than read them as U+FFFD.
  scope.addContentTypeParser(JSON_TYPES, { parseAs: 'buffer', bodyLimit }, (_request, body, done) => {
    try {
      // A `__proto__` or `constructor.prototype` key is refused: a handler that merges the payload
      // into another object must not be able to pollute prototypes.
      done(null, sjson.parse((body as Buffer).toString(), { protoAction: 'error', constructorAction: 'error' }))
    } catch (error) {
      done(new MalformedBodyError({ cause: error }), undefined)
    }
  })
  scope.setErrorHandler(errorHandler('application/json', onErrorAnswer))

  const onRequest: onRequestHookHandler[] = []
  if (isAllowedSource !== undefined) {
    onRequest.push(sourceHook(isAllowedSource))
  }

  // Before the schema: the batch is bounded, made canonical, and every item's hash checked, so a
  // forged batch is a 401 whatever else is wrong with it, and nothing unsigned is looked at further.
  // A callback hook, not an async one: with static secrets it finishes without a turn of the loop.
  const authenticate: preValidationHookHandler = (request, _reply, done) => {
    const byAccount = itemsByAccount(request.body, maxItems)
    const pending = byAccount === undefined ? undefined : verify(byAccount.entries(), secretsOf, request)
    if (pending === undefined) done()
    else pending.then(() => { done() }, done)
  }

  // The batch's events, in order. The guard runs them item by item, and on past a failed or busy
  // item: the answer is a 500 or 409 only once every item had its turn. A store that cannot be
  // reached stops the batch: nothing more can be guarded.
  const eventsOf = (items: Batch['callbacks'], receivedAt: Date): AnyProviderCallbackEvent[] => items.map(payload => eventOf(payload, receivedAt))
  const answer = answerFor(retryAfter)
  // Not async: when every handler and the store answered at once, so does the route.
  const receive = (request: FastifyRequest): MaybePromise<typeof SUCCESS> =>
    then(deliver(eventsOf((request.body as Batch).callbacks, new Date()), request), answer)

  refuseOtherMethods(scope, settings.path, ['POST'])
  scope.route({
    method: 'POST',
    url: settings.path,
    bodyLimit,
    onRequest,
    preValidation: authenticate,
    handler: receive,
    schema: {
      summary: 'Voximplant account callbacks',
      consumes: JSON_TYPES,
      body: voximplantBatchSchema(maxItems),
      response: replySchemas(400, 401, 403, 409, 413, 415, 500, 503)
    }
  })
}

function eventOf (payload: Batch['callbacks'][number], receivedAt: Date): AnyProviderCallbackEvent {
  const known = eventNames.get(payload.type)
  // A type this version does not know goes to onAny only, whatever its name looks like.
  return {
    name: known ?? kebab(payload.type),
    provider: 'voximplant',
    id: `voximplant:${payload.account_id}:${payload.callback_id}`,
    payload,
    receivedAt,
    known: known !== undefined
  } as AnyProviderCallbackEvent
}

// The items of a batch by account, once the batch is bounded and each item has ids to check;
// undefined when the body has no list of items, which the schema then reports.
function itemsByAccount (body: unknown, maxItems: number): Map<number, Item[]> | undefined {
  const items = (body as { callbacks?: unknown } | null | undefined)?.callbacks
  if (!Array.isArray(items)) return undefined
  if (items.length > maxItems) throw new BatchTooLargeError(maxItems)
  const byAccount = new Map<number, Item[]>()
  for (const item of items as unknown[]) {
    if (typeof item !== 'object' || item === null) throw new UnauthorizedError()
    canonicalise(item as Item)
    const { account_id: accountId, callback_id: callbackId } = item as Item
    if (!isId(accountId) || !isId(callbackId)) throw new UnauthorizedError()
    const group = byAccount.get(accountId)
    if (group === undefined) byAccount.set(accountId, [item as Item])
    else group.push(item as Item)
  }
  return byAccount
}

// Checks every account's items against its secrets; a promise only once a lookup gives one, so
// static secrets are checked without a turn of the event loop.
function verify (accounts: Iterator<[number, Item[]]>, secretsOf: SecretsOf, request: FastifyRequest): Promise<void> | undefined {
  for (let next = accounts.next(); next.done !== true; next = accounts.next()) {
    const [accountId, items] = next.value
    // Static secrets are an index that cannot fail; a lookup is async and can only reject.
    const secrets = secretsOf(accountId, request)
    if (isPromiseLike(secrets)) {
      return secrets.then(
        found => { assertSigned(found, accountId, items) },
        (error: unknown) => { throw new InternalError({ cause: error }) }
      ).then(() => verify(accounts, secretsOf, request))
    }
    assertSigned(secrets, accountId, items)
  }
  return undefined
}

function assertSigned (secrets: readonly VoximplantSecret[], accountId: number, items: Item[]): void {
  for (const item of items) {
    if (!isSignedBy(secrets, accountId, item.callback_id as number, item.hash)) throw new UnauthorizedError()
  }
}

// -0 is not an id: it would be signed and keyed as 0, another callback's.
function isId (value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 && !Object.is(value, -0)
}

// Lenient where Voximplant's wire format is unconfirmed (research/voximplant.md §1.2, §2.3): numbers
// sent as decimal strings become numbers, and a payload nested once becomes the documented twice-
// nested shape, so handlers see one shape whatever was sent.
function canonicalise (item: Item): void {
  const { type } = item
  if (typeof type === 'string' && nestedPayloadTypes.has(type)) {
    const payload = item[type]
    if (typeof payload === 'object' && payload !== null && !Object.hasOwn(payload, type)) item[type] = { [type]: payload }
  }
  const coerce = (typeof type === 'string' ? coercions.get(type) : undefined) ?? coerceCommonFields
  coerce(item)
}
