import createError from '@fastify/error'

// Every error a request can end in. The code is what the JSON answer carries and what users
// match on; the message is the one the answer shows (never anything the sender sent us).
const PREFIX = 'FST_PROVIDER_CALLBACKS'
const INVALID_PARAMETERS = 'Invalid request parameters provided.'

export const ForbiddenSourceError = createError(`${PREFIX}_FORBIDDEN_SOURCE`, 'The request does not come from an allowed address.', 403)
export const UnauthorizedError = createError(`${PREFIX}_UNAUTHORIZED`, 'Missing or invalid callback credentials.', 401)
export const InvalidPayloadError = createError(`${PREFIX}_INVALID_PAYLOAD`, INVALID_PARAMETERS, 400)
export const RepeatedFieldError = createError(`${PREFIX}_REPEATED_FIELD`, INVALID_PARAMETERS, 400)
export const MalformedBodyError = createError(`${PREFIX}_MALFORMED_BODY`, INVALID_PARAMETERS, 400)
export const PayloadTooLargeError = createError(`${PREFIX}_PAYLOAD_TOO_LARGE`, 'The request body is too large.', 413)
export const BatchTooLargeError = createError<`${typeof PREFIX}_BATCH_TOO_LARGE`, 413, [number]>(
  `${PREFIX}_BATCH_TOO_LARGE`, 'The batch has more callbacks than the %s this route accepts.', 413)
export const MethodNotAllowedError = createError(`${PREFIX}_METHOD_NOT_ALLOWED`, 'This method is not allowed here; the Allow header lists those that are.', 405)
export const UnsupportedMediaTypeError = createError<`${typeof PREFIX}_UNSUPPORTED_MEDIA_TYPE`, 415, [string]>(
  `${PREFIX}_UNSUPPORTED_MEDIA_TYPE`, 'Unsupported content type; this route accepts %s.', 415)
export const InFlightError = createError(`${PREFIX}_IN_FLIGHT`, 'The callback is being processed by another delivery; retry later.', 409)
export const StoreUnavailableError = createError(`${PREFIX}_STORE_UNAVAILABLE`, 'Callbacks cannot be processed right now; retry later.', 503)
export const HandlerTimeoutError = createError(`${PREFIX}_HANDLER_TIMEOUT`, 'The callback is still being processed; retry later.', 503)
export const ClaimLostError = createError(`${PREFIX}_CLAIM_LOST`, 'The callback\'s processing could not be confirmed; retry later.', 503)
export const ClosingError = createError(`${PREFIX}_CLOSING`, 'The server closed before the callback\'s handlers finished.', 503)
export const HandlerFailedError = createError(`${PREFIX}_HANDLER_FAILED`, 'Internal server error occurred while processing the callback.', 500)
export const InternalError = createError(`${PREFIX}_INTERNAL`, 'Internal server error occurred while processing the callback.', 500)
export const InvalidOptionError = createError<`${typeof PREFIX}_INVALID_OPTION`, 500, [string]>(
  `${PREFIX}_INVALID_OPTION`, 'fastify-provider-callbacks: %s', 500, TypeError)

/** One thing wrong with a request, as the 400 answer lists it: a JSON pointer and what is wrong there. */
export interface FieldProblem {
  path: string
  message: string
}

/** A 400 that says what was wrong. */
export function invalidPayload (
  problems: FieldProblem[],
  ErrorType: typeof InvalidPayloadError | typeof RepeatedFieldError = InvalidPayloadError
): Error & { problems: FieldProblem[] } {
  return Object.assign(new ErrorType(), { problems })
}
