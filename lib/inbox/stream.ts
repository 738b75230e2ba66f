import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { InboxJobData } from './job.js'
import type { InboxConnection } from './options.js'

// Where a request's events wait until a worker makes a job of each: a Redis stream, so that the
// provider waits for one plain XADD, not for BullMQ's add (a Lua script and its bookkeeping, about
// four times the app's CPU per command: bench/extras/bullmq-add.ts). The stream's consumer group
// gives the recovery BullMQ would: an entry read by a worker that died stays pending, and another
// worker claims it once it has been idle for lockDuration.

export type Entry = [id: string, fields: string[] | null]

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

/** The events an entry holds. */
export function eventsOf (fields: string[]): InboxJobData[] {
  return JSON.parse(fields[fields.indexOf('events') + 1]!) as InboxJobData[]
}

const GROUP = 'provider-callbacks'
/** Entries one read takes: one, so that the backlog is looked at before each. */
const ENTRIES = 1
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

/**
 * `command`'s answer, unless `signal` aborts first. A read waits for Redis to come back (the
 * connection's offline queue), which a disconnect then never ends, and so does BullMQ's start-up
 * of the queue: a reader that closes stops waiting for either. Not a race with one promise of the
 * close: each race would leave it a reaction holding the read's reply (every entry ever read, kept
 * until the close); each read's listener goes with the read.
 */
export async function abortable<T> (signal: AbortSignal, command: Promise<T>): Promise<T> {
  // A read the close refuses, or outlasts, still has its command: its rejection (the connection
  // closed under it) must not go unhandled.
  command.catch(() => {})
  signal.throwIfAborted()
  return await new Promise<T>((resolve, reject) => {
    const abort = (): void => { reject(new Error('closed')) }
    signal.addEventListener('abort', abort)
    command.then(resolve, reject).finally(() => { signal.removeEventListener('abort', abort) })
  })
}

export interface StreamReading {
  /** ms an entry read and not acknowledged stays its reader's before another takes it. */
  claimIdle: number
  /** ms between two looks for such entries. */
  claimInterval: number
}

/**
 * One worker's consumer of the received stream: takes entries, new ones or those a dead worker
 * left idle past claimIdle, until `stopped` aborts. Blocking reads hold their connection: one of
 * the reader's own.
 */
export class StreamReader {
  readonly #key: string
  readonly #reader: StreamClient
  readonly #consumer = `${hostname()}:${process.pid}:${randomUUID()}`
  readonly #options: StreamReading
  readonly #block: number
  readonly #stopped: AbortSignal
  #grouped = false
  #claimedAt = 0
  #claimFrom = '0-0'

  constructor (connection: InboxConnection, key: string, options: StreamReading, stopped: AbortSignal) {
    this.#key = key
    this.#reader = connection.duplicate() as StreamClient
    this.#reader.on('error', () => {})
    this.#options = options
    this.#block = Math.min(options.claimInterval, BLOCK)
    this.#stopped = stopped
  }

  /** The next entries: those idle past claimIdle first (looked for every claimInterval), else new ones. */
  async take (): Promise<Entry[]> {
    const key = this.#key
    const reader = this.#reader
    const read = async <T>(command: Promise<T>): Promise<T> => await abortable(this.#stopped, command)
    if (!this.#grouped) {
      // From the stream's start: what was appended before any worker existed is read too. BUSYGROUP
      // (another worker made it) is what fails it; anything else fails the read that follows.
      await read(reader.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM').catch(() => {}))
      this.#grouped = true
    }
    if (Date.now() - this.#claimedAt >= this.#options.claimInterval) {
      // XAUTOCLAIM looks at 10 pending entries per one it may take: the look goes on from where the
      // last call stopped, so that an idle entry behind others still read is found too, and is
      // over once the cursor is back at the start (the look then waits for the next interval).
      do {
        const [next, entries] = await read(reader.xautoclaim(key, GROUP, this.#consumer, this.#options.claimIdle, this.#claimFrom, 'COUNT', ENTRIES))
        this.#claimFrom = next
        if (entries.length > 0) return entries
      } while (this.#claimFrom !== '0-0')
      await read(reader.eval(REMOVE_FORGOTTEN, 1, key, GROUP, this.#consumer, FORGOTTEN_AFTER * this.#block))
      this.#claimedAt = Date.now()
    }
    const streams = await read(reader.xreadgroup('GROUP', GROUP, this.#consumer, 'COUNT', ENTRIES, 'BLOCK', this.#block, 'STREAMS', key, '>'))
    return streams?.[0]?.[1] ?? []
  }

  /** A stream deleted under the worker (a queue obliterated) loses its group: made again at the next take. */
  regroup (): void {
    this.#grouped = false
  }

  /** The entry is done with: acknowledged and deleted, in one transaction. */
  async acknowledge (commands: InboxConnection, id: string): Promise<void> {
    await (commands as StreamClient).multi().xack(this.#key, GROUP, id).xdel(this.#key, id).exec()
  }

  /** Ends a blocked read (an entry it took then stays pending, for claimIdle). */
  disconnect (): void {
    this.#reader.disconnect()
  }

  /**
   * Removes this reader's consumer, whose name is its alone, unless an entry is still pending on
   * it (removing the consumer would drop that entry from the group).
   */
  async removeConsumer (commands: InboxConnection): Promise<void> {
    const client = commands as StreamClient
    try {
      if ((await client.xpending(this.#key, GROUP, '-', '+', 1, this.#consumer)).length === 0) await client.xgroup('DELCONSUMER', this.#key, GROUP, this.#consumer)
    } catch {}
  }
}
