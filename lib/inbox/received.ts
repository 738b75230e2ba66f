import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { FastifyBaseLogger } from 'fastify'
import { loggable } from '../loggable-error.js'
import type { BullmqInbox } from './inbox.js'
import type { InboxJobData } from './job.js'
import type { InboxConnection } from './options.js'

// Where a request's events wait until a worker makes a job of each: a Redis stream, so that the
// provider waits for one plain XADD, not for BullMQ's add (a Lua script and its bookkeeping, about
// four times the app's CPU per command: bench/extras/bullmq-add.ts). The stream's consumer group
// gives the recovery BullMQ would: an entry read by a worker that died stays pending, and another
// worker claims it once it has been idle for lockDuration.

type Entry = [id: string, fields: string[] | null]

/** The ioredis commands the received stream needs (the connection's type names none of them). */
interface StreamClient extends InboxConnection {
  xadd(key: string, id: '*', field: string, value: string): Promise<string | null>
  xgroup(subcommand: 'CREATE', key: string, group: string, id: string, mkstream: 'MKSTREAM'): Promise<unknown>
  xgroup(subcommand: 'DELCONSUMER', key: string, group: string, consumer: string): Promise<unknown>
  xpending(key: string, group: string, start: '-', end: '+', count: number, consumer: string): Promise<unknown[]>
  xreadgroup(...args: Array<string | number>): Promise<Array<[key: string, entries: Entry[]]> | null>
  xautoclaim(key: string, group: string, consumer: string, minIdle: number, start: string, count: 'COUNT', n: number): Promise<[next: string, entries: Entry[], ...deleted: unknown[]]>
  eval(script: string, keys: 1, key: string, ...args: Array<string | number>): Promise<unknown>
  multi(): StreamTransaction
}
interface StreamTransaction {
  xack(key: string, group: string, ...ids: string[]): StreamTransaction
  xdel(key: string, ...ids: string[]): StreamTransaction
  exec(): Promise<Array<[error: Error | null, result: unknown]> | null>
}

/** The stream of an inbox's received events, beside BullMQ's keys (so under its prefix, hash tags included). */
export function receivedKey (prefix: string, name: string): string {
  return `${prefix}:${name}:provider-callbacks:received`
}

/** Appends the events of one or more requests: one command, so all or none. */
export async function appendReceived (client: InboxConnection, key: string, events: InboxJobData[]): Promise<void> {
  await (client as StreamClient).xadd(key, '*', 'events', JSON.stringify(events))
}

const GROUP = 'provider-callbacks'
/** Events waiting in the queue at or above which workers stop fanning out: they make jobs as fast as they run them, and a backlog stays in the stream, which costs no worker CPU. */
export const BACKLOG = 1000
/** Entries one read takes: one, so that the backlog is looked at before each. */
const ENTRIES = 1
/** ms a worker waits before it looks at the backlog again, or after Redis failed it. */
const PAUSE = 100
const RETRY = 1000
/** ms a read blocks at most: the reader's loop (its backlog check, its look for idle entries) turns at least this often. */
const BLOCK = 5000
/** Blocks a consumer with no entry pending may stay idle before it is taken for a dead worker's: a live reader's comes back at least every block. */
const FORGOTTEN_AFTER = 3

// The consumers of workers that died (each crash leaves one) would stay in the group for ever:
// removed by any live worker once idle past the bound, but only with no entry pending on them
// (removing one drops its pending entries from the group). One script, so that no entry is read
// by a consumer between the look and its removal. A live worker's consumer thus removed (it paused
// for the backlog) holds nothing, and its next read makes it again.
// KEYS[1]: the stream; ARGV: the group, this worker's consumer (kept), the idle bound in ms.
const REMOVE_FORGOTTEN = `
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local fields = {}
  for i = 1, #consumer, 2 do fields[consumer[i]] = consumer[i + 1] end
  if fields.name ~= ARGV[2] and fields.pending == 0 and fields.idle > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields.name)
    removed = removed + 1
  end
end
return removed`

export interface FanOutOptions {
  /** ms an entry read and not acknowledged stays its reader's before another worker takes it: the worker's lockDuration. */
  claimIdle: number
  /** ms between two looks for such entries: the worker's stalledInterval. */
  claimInterval: number
  log: FastifyBaseLogger
  /** Called for each entry whose fan-out failed (it is taken again after claimIdle). */
  failed?: () => void
}

export interface FanOut {
  /** Stops reading; resolves once the entries being fanned out are done. */
  close(): Promise<void>
}

/**
 * A worker's reader of the received stream: takes entries (new ones, or those a dead worker left
 * idle past claimIdle), fans each out into a job per event (deduplicated by event id, so taking
 * one twice adds nothing), then acknowledges and deletes it.
 */
export function startFanOut (inbox: BullmqInbox, options: FanOutOptions): FanOut {
  const key = receivedKey(inbox.settings.prefix, inbox.name)
  // Blocking reads hold their connection: one of the reader's own.
  const reader = inbox.connection.duplicate() as StreamClient
  reader.on('error', () => {})
  const consumer = `${hostname()}:${process.pid}:${randomUUID()}`
  const stopped = new AbortController()
  const pause = async (ms: number): Promise<void> => {
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        stopped.signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      stopped.signal.addEventListener('abort', done)
    })
  }
  // A read waits for Redis to come back (the connection's offline queue), which a disconnect then
  // never ends, and so does BullMQ's start-up of the queue (a worker started while Redis was down
  // waits in it): a worker that closes stops waiting for either. Not a race with one promise of the
  // close: each race would leave it a reaction holding the read's reply (every entry ever read, kept
  // until the close); each read's listener goes with the read.
  const read = async <T>(command: Promise<T>): Promise<T> => {
    // A read the close refuses, or outlasts, still has its command: its rejection (the connection
    // closed under it) must not go unhandled.
    command.catch(() => {})
    stopped.signal.throwIfAborted()
    return await new Promise<T>((resolve, reject) => {
      const abort = (): void => { reject(new Error('closed')) }
      stopped.signal.addEventListener('abort', abort)
      command.then(resolve, reject).finally(() => { stopped.signal.removeEventListener('abort', abort) })
    })
  }
  let grouped = false
  let claimedAt = 0
  let claimFrom = '0-0'
  const block = Math.min(options.claimInterval, BLOCK)

  const take = async (): Promise<Entry[]> => {
    if (!grouped) {
      // From the stream's start: what was appended before any worker existed is read too. BUSYGROUP
      // (another worker made it) is what fails it; anything else fails the read that follows.
      await read(reader.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM').catch(() => {}))
      grouped = true
    }
    if (Date.now() - claimedAt >= options.claimInterval) {
      // XAUTOCLAIM looks at 10 pending entries per one it may take: the look goes on from where the
      // last call stopped, so that an idle entry behind others still read is found too, and is
      // over once the cursor is back at the start (the look then waits for the next interval).
      do {
        const [next, entries] = await read(reader.xautoclaim(key, GROUP, consumer, options.claimIdle, claimFrom, 'COUNT', ENTRIES))
        claimFrom = next
        if (entries.length > 0) return entries
      } while (claimFrom !== '0-0')
      await read(reader.eval(REMOVE_FORGOTTEN, 1, key, GROUP, consumer, FORGOTTEN_AFTER * block))
      claimedAt = Date.now()
    }
    const streams = await read(reader.xreadgroup('GROUP', GROUP, consumer, 'COUNT', ENTRIES, 'BLOCK', block, 'STREAMS', key, '>'))
    return streams?.[0]?.[1] ?? []
  }

  const run = async (): Promise<void> => {
    while (!stopped.signal.aborted) {
      try {
        const queue = await read(inbox.queue())
        if (await queue.getWaitingCount() >= BACKLOG) {
          await pause(PAUSE)
          continue
        }
        for (const [id, fields] of await take()) {
          try {
            // An entry deleted since it was read (Redis 6.2 returns it without fields) has nothing left to fan out.
            if (fields !== null) await inbox.fanOut(eventsOf(fields))
            await (inbox.commands() as StreamClient).multi().xack(key, GROUP, id).xdel(key, id).exec()
          } catch (error) {
            // It stays pending, taken again after claimIdle (by this worker or another) for as long
            // as BullMQ refuses it: never lost, but its events run only once a human saw why, so
            // an error, and counted. The entries after it go on.
            options.log.error({ err: loggable(error), entry: id }, 'could not fan received events out into a job each; taken again after lockDuration')
            options.failed?.()
          }
        }
      } catch (error) {
        if (stopped.signal.aborted) break
        // A stream deleted under the worker (a queue obliterated) loses its group: made again.
        grouped = false
        options.log.warn({ err: loggable(error) }, 'could not read the received events; retried')
        await pause(RETRY)
      }
    }
  }
  const running = run()
  return {
    async close () {
      stopped.abort()
      // A blocked read ends with the connection; an entry it took then stays pending, for claimIdle.
      reader.disconnect()
      await running
      // The consumer's name is this worker's alone: removed with it, unless an entry is still
      // pending on it (removing the consumer would drop that entry from the group).
      const commands = inbox.commands() as StreamClient
      try {
        if ((await commands.xpending(key, GROUP, '-', '+', 1, consumer)).length === 0) await commands.xgroup('DELCONSUMER', key, GROUP, consumer)
      } catch {}
    }
  }
}

function eventsOf (fields: string[]): InboxJobData[] {
  return JSON.parse(fields[fields.indexOf('events') + 1]!) as InboxJobData[]
}
