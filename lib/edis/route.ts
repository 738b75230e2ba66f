import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, preValidationHookHandler } from 'fastify'
import { numberCoercion } from '../coerce.js'
import { invalidPayload, RepeatedFieldError, UnauthorizedError } from '../errors.js'
import type { Deliver } from '../delivery/outcome.js'
import { then, type MaybePromise } from '../maybe-promise.js'
import { answerFor, errorHandler, replySchemas, type ErrorAnswerObserver, type SUCCESS } from '../replies.js'
import { refuseOtherMethods } from '../method-not-allowed.js'
import { sourceHook } from '../source.js'
import { parseBasicAuthorization } from './credentials.js'
import { decode, parseForm, REFUSED, REPEATED, parseFormOrRefusal, type FormFields } from './form.js'
import { EdisTrafficRequestSchema, type EdisTrafficThreshold } from './schema.js'

const FORM = 'application/x-www-form-urlencoded'
const CREDENTIAL_FIELDS = new Set(['callback_user', 'callback_pw'])

export interface EdisRouteSettings {
  path: string
  bodyLimit: number
  isAllowedSource?: ((ip: string) => boolean) | undefined
  areValidCredentials?: ((username: string, password: string) => boolean) | undefined
}

interface EdisRouteOptions {
  settings: EdisRouteSettings
  /** What becomes of the event: its handlers run now, or it is stored in the inbox (lib/index.ts chooses). */
  deliver: Deliver
  /** Seconds, for the Retry-After of a 409 or 503. */
  retryAfter: number
  /** Told of every error answer (telemetry's count of refused requests). */
  onErrorAnswer?: ErrorAnswerObserver | undefined
}

/**
 * POST and GET `<prefix><path>`: EDIS's traffic-threshold hook, in a scope of its own. Long for a
 * reason: it is the scope's whole setup (parser, hooks, the two routes' declarations) in the order
 * Fastify runs it; the hooks' logic is in functions of its own.
 */
export async function edisRoutes (scope: FastifyInstance, { settings, deliver, retryAfter, onErrorAnswer }: EdisRouteOptions): Promise<void> {
  // Only form bodies here, parsed leniently; whatever the host registered (its JSON parser,
  // @fastify/formbody with other options) stays on the host's routes. The parser never throws:
  // Fastify before 5.12.8 does not catch a parser that throws, and the process would die of it. A
  // body it refuses is refused by the route's first hook instead, before anything reads a field.
  scope.removeAllContentTypeParsers()
  await scope.register(formbody, { parser: parseFormOrRefusal, bodyLimit: settings.bodyLimit })
  scope.setErrorHandler(errorHandler(FORM, onErrorAnswer))

  const { isAllowedSource, areValidCredentials } = settings
  const onRequest: onRequestHookHandler[] = []
  if (isAllowedSource !== undefined) {
    onRequest.push(sourceHook(isAllowedSource))
  }
  if (areValidCredentials !== undefined) {
    // Basic credentials are checked before the body is read; field credentials once it is.
    onRequest.push((request, _reply, done) => {
      const header = request.headers.authorization
      if (header !== undefined) {
        const given = parseBasicAuthorization(header)
        if (given === undefined || !areValidCredentials(given.username, given.password)) throw new UnauthorizedError()
      }
      done()
    })
  }

  const prepareFields = fieldsHook(areValidCredentials)

  // A 500, 409 or 503 makes EDIS (or whoever redelivers) try again.
  const answer = answerFor(retryAfter)
  const receive = (request: FastifyRequest): MaybePromise<typeof SUCCESS> => {
    const payload = (request.method === 'GET' ? request.query : request.body) as EdisTrafficThreshold
    const event = {
      name: 'traffic-threshold',
      provider: 'edis',
      id: `edis:${payload.kvm}:${payload.trigger_value}`,
      payload,
      receivedAt: new Date(),
      known: true
    } as const
    return then(deliver(event, request), answer)
  }

  const route = {
    url: settings.path,
    onRequest,
    preValidation: prepareFields,
    handler: receive,
    logSerializers: { req: withoutQueryCredentials }
  }
  scope.route({
    ...route,
    method: 'POST',
    bodyLimit: settings.bodyLimit,
    schema: {
      summary: 'EDIS Global traffic-threshold callback',
      consumes: [FORM],
      body: EdisTrafficRequestSchema,
      response: replySchemas(400, 401, 403, 409, 413, 415, 500, 503)
    }
  })
  refuseOtherMethods(scope, settings.path, ['GET', 'POST'], { logSerializers: route.logSerializers })
  scope.route({
    ...route,
    method: 'GET',
    exposeHeadRoute: false,
    schema: {
      summary: 'EDIS Global traffic-threshold callback (hook set with callback_method=get)',
      querystring: EdisTrafficRequestSchema,
      response: replySchemas(400, 401, 403, 409, 500, 503)
    }
  })
}

// GET queries go through the same lenient parser as bodies (not the host's querystring parser),
// so both methods accept the same input and report a repeated field the same way.

/**
 * The route's preValidation: a refused body refused, field credentials checked, repeated fields a
 * 400, credentials dropped, numbers coerced. A callback hook, not an async one: it finishes
 * without a turn of the event loop.
 */
function fieldsHook (areValidCredentials: EdisRouteSettings['areValidCredentials']): preValidationHookHandler {
  const coerceNumbers = numberCoercion(EdisTrafficRequestSchema) as (fields: FormFields) => FormFields
  return (request, _reply, done) => {
    const fields = readFields(request)
    const refusal = fields?.[REFUSED]
    if (refusal !== undefined) throw refusal
    if (areValidCredentials !== undefined && request.headers.authorization === undefined) {
      // No body at all has no credentials either: a 401, as for any other request without them.
      const { callback_user: username, callback_pw: password } = fields ?? {}
      if (typeof username !== 'string' || typeof password !== 'string' || !areValidCredentials(username, password)) {
        throw new UnauthorizedError()
      }
    }
    if (fields === undefined) return done()
    const repeated = fields[REPEATED]
    if (repeated !== undefined) {
      throw invalidPayload(repeated.map(key => ({ path: pointer(key), message: 'Expected the field once, got it repeated' })), RepeatedFieldError)
    }
    // Credentials are checked: they go no further, not to an event and not to request.body for
    // whatever hook runs next. (Deleting makes the object slower to read: only when they came.)
    if (fields.callback_user !== undefined || fields.callback_pw !== undefined) {
      delete fields.callback_user
      delete fields.callback_pw
    }
    // Form values are strings; the schema documents trigger_value as the integer it means.
    coerceNumbers(fields)
    done()
  }
}

function readFields (request: FastifyRequest): FormFields | undefined {
  if (request.method !== 'GET') return request.body as FormFields | undefined
  const start = request.url.indexOf('?')
  const query = parseForm(start === -1 ? '' : request.url.slice(start + 1))
  request.query = query
  return query
}

function pointer (key: string): string {
  return '/' + key.replaceAll('~', '~0').replaceAll('/', '~1')
}

// A field is redacted by its decoded name, as the parser reads it: `callback%5Fpw` is callback_pw.
function withoutCredentials (url: string): string {
  const start = url.indexOf('?')
  if (start === -1) return url
  const fields = url.slice(start + 1).split('&').map(field => {
    const equals = field.indexOf('=')
    const name = equals === -1 ? field : field.slice(0, equals)
    return CREDENTIAL_FIELDS.has(decode(name)) ? `${name}=[redacted]` : field
  })
  return `${url.slice(0, start + 1)}${fields.join('&')}`
}

// Fastify's request serializer, except that a GET's query never logs a credential.
function withoutQueryCredentials (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: withoutCredentials(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}
