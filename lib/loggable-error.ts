/** An error as the package logs it: its name, message, code and stack, and its cause so too. */
export interface LoggableError {
  type: string
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
  if (!(error instanceof Error)) return { type: typeof error, message: String(error) }
  const logged: LoggableError = { type: error.name, message: error.message }
  const { code } = error as { code?: unknown }
  if (typeof code === 'string') logged.code = code
  if (error.stack !== undefined) logged.stack = error.stack
  // A cause is another error of the same kind (a Redis error under a lost claim); a chain of them is cut short.
  if (error.cause !== undefined && depth < 3) logged.cause = loggable(error.cause, depth + 1)
  return logged
}
