import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, preValidationHookHandler } from 'fastify'
import { numberCoercion } from '../coerce.js'
import { ForbiddenSourceError, invalidPayload, RepeatedFieldError, UnauthorizedError } from '../errors.js'
import { assertDelivered, type Deliver } from '../idempotency/guard.js'
import { errorHandler, replySchemas, SUCCESS } from '../replies.js'
import { parseBasicAuthorization } from './credentials.js'
import { parseForm, type FormFields } from './form.js'
import { EdisTrafficRequestSchema, type EdisTrafficRequest } from './schema.js'

const FORM = 'application/x-www-form-urlencoded'
const CREDENTIAL_IN_QUERY = /([?&]callback_(?:user|pw)=)[^&]*/g

export interface EdisRouteSettings {
  path: string
  bodyLimit: number
  isAllowedSource?: ((ip: string) => boolean) | undefined
  areValidCredentials?: ((username: string, password: string) => boolean) | undefined
}

interface EdisRouteOptions {
  settings: EdisRouteSettings
  deliver: Deliver
  retryAfter: number
}

/** POST and GET `<prefix><path>`: EDIS's traffic-threshold hook, in a scope of its own. */
export async function edisRoutes (scope: FastifyInstance, { settings, deliver, retryAfter }: EdisRouteOptions): Promise<void> {
  // Only form bodies here, parsed leniently; whatever the host registered (its JSON parser,
  // @fastify/formbody with other options) stays on the host's routes.
  scope.removeAllContentTypeParsers()
  await scope.register(formbody, { parser: parseForm, bodyLimit: settings.bodyLimit })
  scope.setErrorHandler(errorHandler(FORM))

  const { isAllowedSource, areValidCredentials } = settings
  const coerceNumbers = numberCoercion(EdisTrafficRequestSchema) as (fields: FormFields) => FormFields
  const onRequest: onRequestHookHandler[] = []
  if (isAllowedSource !== undefined) {
    onRequest.push(async request => {
      if (!isAllowedSource(request.ip)) throw new ForbiddenSourceError()
    })
  }
  if (areValidCredentials !== undefined) {
    // Basic credentials are checked before the body is read; field credentials once it is.
    onRequest.push(async request => {
      const header = request.headers.authorization
      if (header === undefined) return
      const given = parseBasicAuthorization(header)
      if (given === undefined || !areValidCredentials(given.username, given.password)) throw new UnauthorizedError()
    })
  }

  const prepareFields: preValidationHookHandler = async request => {
    const fields = readFields(request)
    if (fields === undefined) return
    if (areValidCredentials !== undefined && request.headers.authorization === undefined) {
      const { callback_user: username, callback_pw: password } = fields
      if (typeof username !== 'string' || typeof password !== 'string' || !areValidCredentials(username, password)) {
        throw new UnauthorizedError()
      }
    }
    const repeated = Object.keys(fields).filter(key => Array.isArray(fields[key]))
    if (repeated.length > 0) {
      throw invalidPayload(repeated.map(key => ({ path: pointer(key), message: 'Expected the field once, got it repeated' })), RepeatedFieldError)
    }
    // Form values are strings; the schema documents trigger_value as the integer it means.
    coerceNumbers(fields)
  }

  const receive = async (request: FastifyRequest): Promise<typeof SUCCESS> => {
    const { callback_user: _user, callback_pw: _password, ...payload } = (request.method === 'GET' ? request.query : request.body) as EdisTrafficRequest
    const event = {
      name: 'traffic-threshold',
      provider: 'edis',
      id: `edis:${payload.kvm}:${payload.trigger_value}`,
      payload,
      receivedAt: new Date()
    } as const
    // A 500, 409 or 503 makes EDIS (or whoever redelivers) try again.
    assertDelivered(await deliver(event, request), retryAfter)
    return SUCCESS
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

// Fastify's request serializer, except that a GET's query never logs a credential.
function withoutQueryCredentials (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: request.url.replace(CREDENTIAL_IN_QUERY, '$1[redacted]'),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}
