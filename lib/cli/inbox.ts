// provider-callbacks inbox failed | retry <event id> | retry-failed: the dead letters of an inbox,
// and their replay, from a shell, on Redis or PostgreSQL. Loads ioredis or pg, and bullmq, only when run.
import { parseArgs } from 'node:util'
import type { CliIO, Command } from './common.js'
import { bullmqInbox, type Inbox } from '../inbox/inbox.js'
import { postgresInbox } from '../inbox/postgres-inbox.js'
import type { InboxConnection } from '../inbox/options.js'

export const INBOX_USAGE = `Usage: provider-callbacks inbox <failed | retry EVENT_ID | retry-failed> (--redis URL | --postgres URL) [options]

The dead letters of an inbox (bullmqInbox on Redis, postgresInbox on PostgreSQL): events whose
handlers failed every attempt, or threw UnrecoverableError. Needs bullmq installed beside the
package, and ioredis (Redis) or pg (PostgreSQL).

Commands:
  failed               lists them, oldest first: event id, name, attempts, last error
  retry EVENT_ID       runs that event again, with its attempts afresh
  retry-failed         runs every one of them again

Options:
  --redis URL          the inbox's Redis, e.g. redis://localhost:6379 (required; env REDIS_URL);
                       a password in it is never printed
  --postgres URL       the inbox's PostgreSQL instead, e.g. postgres://user@localhost/app;
                       a password in it is never printed
  --schema SCHEMA      PostgreSQL: BullMQ's schema (default bullmq)
  --name NAME          the queue's name (default provider-callbacks)
  --prefix PREFIX      Redis: BullMQ's key prefix (default bull)
  --timeout MS         how long to wait for Redis or PostgreSQL (default 10000)
  -h, --help           this help

Exit codes: 0 done; 1 Redis or PostgreSQL could not be reached, there is no such inbox, or the event is not a
dead letter; 2 the command line was wrong. Nothing is written to a queue that does not exist.
`

export const inbox: Command = {
  help: '  inbox             an inbox\'s dead letters: failed, retry EVENT_ID, retry-failed',
  run: async (args, io) => await inboxCommand(args, io)
}

/**
 * Runs `inbox ...` (the arguments after `inbox`) and resolves to the exit code. Long for a reason:
 * one switch over the three subcommands, each a few lines, around one connection's life.
 */
export async function inboxCommand (args: string[], io: CliIO): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        redis: { type: 'string' },
        postgres: { type: 'string' },
        schema: { type: 'string', default: 'bullmq' },
        name: { type: 'string', default: 'provider-callbacks' },
        prefix: { type: 'string', default: 'bull' },
        timeout: { type: 'string', default: '10000' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (error) {
    return usage(io, (error as Error).message.replace(/(\.\s|\.?\n)[\s\S]*$/, ''))
  }
  const { values, positionals: [command, ...rest] } = parsed
  if (values.help === true) {
    io.stdout.write(INBOX_USAGE)
    return 0
  }
  const expected = command === 'retry' ? 1 : 0
  if (command !== 'failed' && command !== 'retry' && command !== 'retry-failed') {
    return usage(io, command === undefined ? 'inbox what? failed, retry EVENT_ID or retry-failed' : `unknown inbox command '${command}'`)
  }
  if (rest.length !== expected) return usage(io, command === 'retry' ? 'retry needs one EVENT_ID' : `${command} takes no argument`)
  if (values.redis !== undefined && values.postgres !== undefined) return usage(io, 'give --redis or --postgres, not both')
  const timeout = Number(values.timeout)
  if (values.postgres !== undefined) {
    const url = values.postgres
    if (!URL.canParse(url) || !/^postgres(ql)?:$/.test(new URL(url).protocol)) return usage(io, '--postgres must be a postgres:// or postgresql:// URL')
    if (!Number.isSafeInteger(timeout) || timeout < 1) return usage(io, `--timeout must be a positive integer, got '${values.timeout}'`)
    return await postgresCommand(command, rest[0], { url, schema: values.schema, name: values.name, timeout }, io)
  }
  const url = values.redis ?? io.env.REDIS_URL
  if (url === undefined) return usage(io, 'missing --redis (or REDIS_URL) or --postgres')
  if (!URL.canParse(url) || !/^rediss?:$/.test(new URL(url).protocol)) return usage(io, '--redis must be a redis:// or rediss:// URL')
  if (!Number.isSafeInteger(timeout) || timeout < 1) return usage(io, `--timeout must be a positive integer, got '${values.timeout}'`)
  const where = `${new URL(url).host} (queue ${values.name})`

  const { Redis } = await import('ioredis')
  // One try, no reconnection: a Redis that refuses is said at once, as the provisioning commands
  // say an API that refuses, rather than after --timeout of retries.
  const connection = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true, retryStrategy: () => null })
  // ioredis rejects a failed connect with "Connection is closed."; the reason is in its error event.
  let reason: Error | undefined
  connection.on('error', (error: Error) => { reason ??= error })
  const failure = (error: unknown): number => {
    io.stderr.write(`provider-callbacks: ${where}: ${(error as Error).message}\n`)
    return 1
  }
  let inbox: Inbox
  try {
    inbox = bullmqInbox({ connection: connection as unknown as InboxConnection, name: values.name, prefix: values.prefix, addTimeout: timeout })
  } catch (error) {
    connection.disconnect()
    return failure(error)
  }
  const answer = await within(timeout, async () => {
    await connection.connect().catch((error: unknown) => { throw reason ?? error })
    // BullMQ's Queue writes its meta hash as it starts: a mistyped --name would leave a queue
    // behind, so none is made for a queue no inbox ever used (each writes its meta).
    const keys = [`${values.prefix}:${values.name}:meta`, `${values.prefix}:${values.name}:failed`]
    return await connection.exists(...keys) > 0
  }).then(async found => {
    if (found) return await run(command, rest[0], inbox, where, io)
    io.stderr.write(`provider-callbacks: ${where}: no such inbox (no key ${values.prefix}:${values.name}:meta); check --name and --prefix\n`)
    return 1
  }).catch(failure)
  await inbox.close()
  connection.disconnect()
  return answer
}

/**
 * The inbox on PostgreSQL: its queue is looked for first (a row of BullMQ's for it), without
 * BullMQ, which would create its schema (migrations) and its queue's rows where there were none.
 */
async function postgresCommand (
  command: 'failed' | 'retry' | 'retry-failed', id: string | undefined, { url, schema, name, timeout }: { url: string, schema: string, name: string, timeout: number }, io: CliIO
): Promise<number> {
  const where = `${new URL(url).host} (queue ${name})`
  const failure = (error: unknown): number => {
    io.stderr.write(`provider-callbacks: ${where}: ${(error as Error).message}\n`)
    return 1
  }
  let inbox: Inbox
  try {
    inbox = postgresInbox({ connection: { connectionString: url, schema, connectionTimeoutMillis: timeout }, name, addTimeout: timeout })
  } catch (error) {
    return failure(error)
  }
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeout })
  client.on('error', () => {})
  const answer = await within(timeout, async () => {
    await client.connect()
    // The schema's name was checked by postgresInbox: a plain identifier.
    const { rows } = await client.query('select exists (select 1 from pg_tables where schemaname = $1 and tablename = \'meta\') as schema', [schema])
    if (rows[0].schema !== true) return false
    const queue = await client.query(`select exists (select 1 from "${schema}".meta where queue = $1) or exists (select 1 from "${schema}".job where queue = $1) as found`, [name])
    return queue.rows[0].found === true
  }, 'PostgreSQL').then(async found => {
    if (found) return await run(command, id, inbox, where, io)
    io.stderr.write(`provider-callbacks: ${where}: no such inbox (no queue ${name} in schema ${schema}); check --name and --schema\n`)
    return 1
  }).catch(failure)
  await client.end().catch(() => {})
  await inbox.close()
  return answer
}

async function within<T> (timeout: number, work: () => Promise<T>, what = 'Redis'): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`${what} did not answer within ${timeout} ms`)) }, timeout)
  })
  const done = work()
  try {
    return await Promise.race([done, late])
  } finally {
    clearTimeout(timer)
    // Given up on: its end (a connect the disconnect then rejects) is nobody's to hear.
    done.catch(() => {})
  }
}

async function run (command: 'failed' | 'retry' | 'retry-failed', id: string | undefined, inbox: Inbox, where: string, io: CliIO): Promise<number> {
  if (command === 'failed') {
    const dead = await inbox.failed()
    for (const { event, attempts, error } of dead) io.stdout.write(`${event.id}  ${event.name}  attempts ${attempts}  ${error}\n`)
    io.stdout.write(`${dead.length} dead letter${dead.length === 1 ? '' : 's'} in ${where}\n`)
    return 0
  }
  if (command === 'retry') {
    if (await inbox.retry(id!)) {
      io.stdout.write(`${id}: back in ${where}, to run again\n`)
      return 0
    }
    io.stderr.write(`${id}: not a dead letter in ${where}\n`)
    return 1
  }
  const count = await inbox.retryFailed()
  io.stdout.write(`${count} dead letter${count === 1 ? '' : 's'} back in ${where}, to run again\n`)
  return 0
}

function usage (io: CliIO, message: string): number {
  io.stderr.write(`provider-callbacks: ${message}\n\n${INBOX_USAGE}`)
  return 2
}
