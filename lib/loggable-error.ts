/** An error as the package logs it: its name, message, code and stack, and its cause so too. */
export interface LoggableError {
  name: string
  message: string
  code?: string
  stack?: string
  cause?: LoggableError
}

/**
 * What of an error from Redis (or a store, or BullMQ) may reach a log line. ioredis attaches the
 * command that failed to its errors (`command.args`: a request's signed items and SMS text, a
 * BullMQ script of 30 KB, a job's data), and a logger writes every property it finds: only the
 * error's own words are kept.
 */
export function loggable (error: unknown, depth = 0): LoggableError {
  // No prototype: pino's err serializer then takes the type from `name` (of a plain object, or of
  // a new Error, it would say 'Object' or 'Error', not 'ReplyError').
  const logged = Object.create(null) as LoggableError
  if (!(error instanceof Error)) {
    logged.name = typeof error
    logged.message = String(error)
    return logged
  }
  logged.name = error.name
  logged.message = error.message
  const { code } = error as { code?: unknown }
  if (typeof code === 'string') logged.code = code
  if (error.stack !== undefined) logged.stack = error.stack
  // A cause is another error of the same kind (a Redis error under a lost claim); a chain of them is cut short.
  if (error.cause !== undefined && depth < 3) logged.cause = loggable(error.cause, depth + 1)
  return logged
}
