import { Type } from '@sinclair/typebox'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Outcome } from './delivery/outcome.js'
import {
  ClaimLostError, HandlerFailedError, InFlightError, InternalError, MalformedBodyError, PayloadTooLargeError, StoreUnavailableError,
  UnsupportedMediaTypeError, type FieldProblem
} from './errors.js'

/** The seed's answer to a callback that was received. */
export const SUCCESS = { status: 'success', message: 'Callback received successfully.' } as const

/**
 * A route's answer to the worst outcome of its events: the seed's success, or the error it calls
 * for (a 409 or 503 with Retry-After, a 500), which makes the provider deliver again.
 */
export function answerFor (retryAfter: number): (outcome: Outcome) => typeof SUCCESS {
  return outcome => {
    switch (outcome) {
      case 'unavailable': throw Object.assign(new StoreUnavailableError(), { retryAfter })
      case 'lost': throw Object.assign(new ClaimLostError(), { retryAfter })
      case 'failed': throw new HandlerFailedError()
      case 'in-flight': throw Object.assign(new InFlightError(), { retryAfter })
    }
    return SUCCESS
  }
}

export const SuccessReplySchema = Type.Object({
  status: Type.Literal('success'),
  message: Type.String()
}, { title: 'CallbackReceived' })

export const ErrorReplySchema = Type.Object({
  status: Type.Literal('error'),
  message: Type.String(),
  code: Type.String({ description: 'A FST_PROVIDER_CALLBACKS_* code; see the README\'s "Answers and errors".' }),
  errors: Type.Optional(Type.Array(Type.Object({
    path: Type.String({ description: 'JSON pointer to the field, `` for the whole body.' }),
    message: Type.String()
  }), { description: 'What was wrong, on a 400.' }))
}, { title: 'CallbackRejected' })

/** The response schemas every route shares; a route adds the statuses it can answer with. */
export function replySchemas (...statuses: number[]): Record<number, typeof SuccessReplySchema | typeof ErrorReplySchema> {
  return Object.fromEntries([[200, SuccessReplySchema], ...statuses.map(s => [s, ErrorReplySchema])])
}

type ReplyError = FastifyError & { problems?: FieldProblem[], retryAfter?: number }
type Answer = ReplyError & { statusCode: number }

// Fastify's own errors for what the wire got wrong, in the plugin's shape. Their messages are not
// reused: some quote what the sender sent (a content type), and answers never echo input.
function translate (error: ReplyError, acceptedType: string): Answer {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError()
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(acceptedType)
  }
  if (error.code?.startsWith('FST_PROVIDER_CALLBACKS_') === true) return error as Answer
  if (error.statusCode === 400 || error.statusCode === 415 || error.statusCode === 413) {
    return new MalformedBodyError()
  }
  return new InternalError()
}

/** Told of every error answer a route gives (telemetry counts them). */
export type ErrorAnswerObserver = (request: FastifyRequest, statusCode: number, code: string) => void

/**
 * The routes' error handler: every failure becomes `{ status: 'error', message, code }`, logged at
 * info for what the sender got wrong and at error for what the server did. Log lines carry codes,
 * paths and messages, never a value from the request.
 */
export function errorHandler (acceptedType: string, observe?: ErrorAnswerObserver) {
  return function handleError (this: unknown, error: ReplyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const answer = translate(error, acceptedType)
    const { statusCode } = answer
    if (statusCode >= 500) {
      request.log.error({ err: error, code: answer.code }, 'provider callback failed')
    } else {
      request.log.info({ code: answer.code, statusCode, problems: answer.problems }, 'provider callback rejected')
    }
    observe?.(request, statusCode, answer.code)
    if (answer.retryAfter !== undefined) reply.header('retry-after', answer.retryAfter)
    // A sender refused for who it is, or before its body is read (405), gets no kept-alive
    // connection: a body it had still to send is not read and thrown away for it, however large.
    if (statusCode === 401 || statusCode === 403 || statusCode === 405) reply.header('connection', 'close')
    const body = { status: 'error', message: answer.message, code: answer.code, errors: answer.problems }
    return reply.code(statusCode).send(body)
  }
}
