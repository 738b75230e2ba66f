import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify'
import { MethodNotAllowedError } from './errors.js'

/**
 * Answers every other method on a route's path with a 405, an `Allow` header and the plugin's
 * error shape, from onRequest: before the body is read, so a PUT with a body gets the same 405
 * whatever it carries (without these routes it fell through to the host's not-found handler, which
 * parses the body first and answers in Fastify's shape). Hidden from the OpenAPI document.
 */
export function refuseOtherMethods (scope: FastifyInstance, url: string, allowed: readonly string[], options: Partial<RouteOptions> = {}): void {
  const allow = allowed.join(', ')
  scope.route({
    ...options,
    method: scope.supportedMethods.filter(method => !allowed.includes(method)),
    url,
    // @fastify/swagger's flag; its type is only there when the host loads swagger.
    schema: { hide: true } as FastifySchema,
    onRequest: (_request, reply, done) => {
      reply.header('allow', allow)
      done(new MethodNotAllowedError())
    },
    /* c8 ignore next */
    handler: () => { throw new MethodNotAllowedError() }
  })
}
