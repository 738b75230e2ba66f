import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import sjson from 'secure-json-parse'
import { numberCoercion } from '../coerce.js'
import { BatchTooLargeError, ForbiddenSourceError, InternalError, MalformedBodyError, UnauthorizedError } from '../errors.js'
import type { AnyProviderCallbackEvent } from '../events.js'
import { assertDelivered, worse, type Deliver, type Outcome } from '../idempotency/guard.js'
import { errorHandler, replySchemas, SUCCESS } from '../replies.js'
import { isSignedBy } from './hash.js'
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
  deliver: Deliver
  retryAfter: number
}

type Item = Record<string, unknown>
type Batch = { callbacks: Array<VoximplantCallback | VoximplantUnknownCallback> }

// Every item schema has numbers (callback_id, account_id, balance), so each has a coercion.
const coercions = new Map(Object.entries(VoximplantCallbackSchemas).map(([type, schema]) => [type, numberCoercion(schema)!]))
const coerceCommonFields = numberCoercion(VoximplantCommonFieldsSchema)!
const eventNames = new Map(Object.keys(VoximplantCallbackSchemas).map(type => [type, kebab(type)]))

/** POST `<prefix><path>`: Voximplant's account callbacks, in a scope of their own. */
export async function voximplantRoutes (scope: FastifyInstance, { settings, deliver, retryAfter }: VoximplantRouteOptions): Promise<void> {
  const { bodyLimit, maxItems, secretsOf, isAllowedSource } = settings
  scope.removeAllContentTypeParsers()
  scope.addContentTypeParser(JSON_TYPES, { parseAs: 'string', bodyLimit }, (_request, text, done) => {
    try {
      // A `__proto__` or `constructor.prototype` key is refused: a handler that merges the payload
      // into another object must not be able to pollute prototypes.
      done(null, sjson.parse(text as string, { protoAction: 'error', constructorAction: 'error' }))
    } catch (error) {
      done(new MalformedBodyError({ cause: error }), undefined)
    }
  })
  scope.setErrorHandler(errorHandler('application/json'))

  const onRequest: onRequestHookHandler[] = []
  if (isAllowedSource !== undefined) {
    onRequest.push(async request => {
      if (!isAllowedSource(request.ip)) throw new ForbiddenSourceError()
    })
  }

  // Before the schema: the batch is bounded, made canonical, and every item's hash checked, so a
  // forged batch is a 401 whatever else is wrong with it, and nothing unsigned is looked at further.
  const authenticate = async (request: FastifyRequest): Promise<void> => {
    const body = request.body as { callbacks?: unknown } | undefined
    if (typeof body !== 'object' || body === null || !Array.isArray(body.callbacks)) return
    const items: unknown[] = body.callbacks
    if (items.length > maxItems) throw new BatchTooLargeError(maxItems)
    const byAccount = new Map<number, Item[]>()
    for (const item of items) {
      if (typeof item !== 'object' || item === null) throw new UnauthorizedError()
      canonicalise(item as Item)
      const { account_id: accountId, callback_id: callbackId } = item as Item
      if (!isId(accountId) || !isId(callbackId)) throw new UnauthorizedError()
      const group = byAccount.get(accountId)
      if (group === undefined) byAccount.set(accountId, [item as Item])
      else group.push(item as Item)
    }
    for (const [accountId, accountItems] of byAccount) {
      let secrets
      try {
        secrets = await secretsOf(accountId, request)
      } catch (error) {
        throw new InternalError({ cause: error })
      }
      for (const item of accountItems) {
        if (!isSignedBy(secrets, accountId, item.callback_id as number, item.hash)) throw new UnauthorizedError()
      }
    }
  }

  const receive = async (request: FastifyRequest): Promise<typeof SUCCESS> => {
    const receivedAt = new Date()
    let outcome: Outcome = 'delivered'
    // In order, and on past a failed or busy item: the answer is a 500 or 409 only once every item
    // had its turn. A store that cannot be reached stops the batch: nothing more can be guarded.
    for (const payload of (request.body as Batch).callbacks) {
      const event = {
        name: eventNames.get(payload.type) ?? kebab(payload.type),
        provider: 'voximplant',
        id: `voximplant:${payload.account_id}:${payload.callback_id}`,
        payload,
        receivedAt
      } as const
      outcome = worse(outcome, await deliver(event as AnyProviderCallbackEvent, request))
      if (outcome === 'unavailable') break
    }
    assertDelivered(outcome, retryAfter)
    return SUCCESS
  }

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

function isId (value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
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
