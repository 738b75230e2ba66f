// Type tests of the error classes users match on (README's "Answers and errors"): each one's code and
// status are literal types. index.test-d.ts already checks UnauthorizedError.
import {
  BatchTooLargeError, ForbiddenSourceError, HandlerFailedError, InFlightError, InternalError, InvalidOptionError, InvalidPayloadError,
  MalformedBodyError, PayloadTooLargeError, RepeatedFieldError, StoreUnavailableError, UnsupportedMediaTypeError,
  type FieldProblem, invalidPayload
} from '../../lib/index.js'
import { type Equal, expectType } from './assert.js'

type Codes<E extends abstract new (...args: never) => { code: string, statusCode?: number }> = [InstanceType<E>['code'], InstanceType<E>['statusCode']]
expectType<Equal<Codes<typeof ForbiddenSourceError>, ['FST_PROVIDER_CALLBACKS_FORBIDDEN_SOURCE', 403]>>()
expectType<Equal<Codes<typeof InvalidPayloadError>, ['FST_PROVIDER_CALLBACKS_INVALID_PAYLOAD', 400]>>()
expectType<Equal<Codes<typeof RepeatedFieldError>, ['FST_PROVIDER_CALLBACKS_REPEATED_FIELD', 400]>>()
expectType<Equal<Codes<typeof MalformedBodyError>, ['FST_PROVIDER_CALLBACKS_MALFORMED_BODY', 400]>>()
expectType<Equal<Codes<typeof PayloadTooLargeError>, ['FST_PROVIDER_CALLBACKS_PAYLOAD_TOO_LARGE', 413]>>()
expectType<Equal<Codes<typeof BatchTooLargeError>, ['FST_PROVIDER_CALLBACKS_BATCH_TOO_LARGE', 413]>>()
expectType<Equal<Codes<typeof UnsupportedMediaTypeError>, ['FST_PROVIDER_CALLBACKS_UNSUPPORTED_MEDIA_TYPE', 415]>>()
expectType<Equal<Codes<typeof InFlightError>, ['FST_PROVIDER_CALLBACKS_IN_FLIGHT', 409]>>()
expectType<Equal<Codes<typeof StoreUnavailableError>, ['FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE', 503]>>()
expectType<Equal<Codes<typeof HandlerFailedError>, ['FST_PROVIDER_CALLBACKS_HANDLER_FAILED', 500]>>()
expectType<Equal<Codes<typeof InternalError>, ['FST_PROVIDER_CALLBACKS_INTERNAL', 500]>>()
expectType<Equal<Codes<typeof InvalidOptionError>, ['FST_PROVIDER_CALLBACKS_INVALID_OPTION', 500]>>()

// The errors with a message argument take what their message needs.
const tooLarge = new BatchTooLargeError(1000)
const unsupported = new UnsupportedMediaTypeError('application/json')
// @ts-expect-error the batch limit is a number
const tooLargeText = new BatchTooLargeError('many')
// A 400 lists its problems.
const problems = invalidPayload([{ path: '/kvm', message: 'Expected string' }]).problems
expectType<Equal<typeof problems, FieldProblem[]>>()
expectType<Equal<FieldProblem, { path: string, message: string }>>()
// Some code that handles errors generically reads `code` off any of them.
const anyError = Math.random() > 0.5 ? new InFlightError() : new StoreUnavailableError()
expectType<Equal<typeof anyError.code, 'FST_PROVIDER_CALLBACKS_IN_FLIGHT' | 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE'>>()

export { tooLarge, unsupported, tooLargeText, problems, anyError }
