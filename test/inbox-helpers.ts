import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { bullmqInbox, type BullmqInboxOptions, type Inbox } from '../lib/index.js'
import type { BullmqInbox } from '../lib/inbox/inbox.js'
import type { InboxJobData } from '../lib/inbox/job.js'
import { TYPESCRIPT_NODE_ARGS } from './helpers.js'
import { cleanUp, deleteKeys, REDIS_URL } from './redis-helpers.js'

/** Fast retries, so that a test's failing runs take milliseconds, not BullMQ's hours. */
export const FAST = { attempts: 3, backoff: { type: 'fixed', delay: 10 } } satisfies Partial<BullmqInboxOptions>

/** A worker's connection, as docs/inbox.md says to make it. */
export function workerConnection (url = REDIS_URL): Redis {
  const connection = new Redis(url, { maxRetriesPerRequest: null })
  connection.on('error', () => {})
  return connection
}

/**
 * An inbox on a queue of its own (a random name), removed with its claims when the test ends,
 * however it ended; the shared Redis is never flushed.
 */
export function testInbox (t: Test, options: Partial<BullmqInboxOptions> = {}, url = REDIS_URL): { inbox: Inbox, name: string, connection: Redis } {
  const connection = workerConnection(url)
  const name = options.name ?? `test-${randomUUID()}`
  const inbox = bullmqInbox({ connection, name, ...FAST, ...options })
  cleanUp(t, async () => {
    try {
      await inbox.close()
    } finally {
      await removeQueue(name, url, options.prefix)
      if (options.claimPrefix !== undefined) await deleteKeys(options.claimPrefix, url).catch(() => {})
      connection.disconnect()
    }
  })
  return { inbox, name, connection }
}

/**
 * Removes the BullMQ queue `name` (under `prefix`) and every key left under it: its received
 * stream, its claims and done records, whatever a worker wrote after the obliterate.
 */
export async function removeQueue (name: string, url = REDIS_URL, prefix = 'bull'): Promise<void> {
  const connection = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null })
  connection.on('error', () => {})
  try {
    const queue = new Queue(name, { connection, prefix })
    try {
      await queue.obliterate({ force: true })
    } finally {
      await queue.close()
    }
  } catch {} finally {
    connection.disconnect()
  }
  await deleteKeys(`${prefix}:${name}:`, url).catch(() => {})
}

/** Where the inbox named `name` keeps its claims and done records by default (and its received stream). */
export function claimPrefix (name: string, prefix = 'bull'): string {
  return `${prefix}:${name}:provider-callbacks:`
}

/**
 * Waits until `check` holds: a guard against a hang, not a measure of speed, so its deadline is
 * generous; the state is asserted by the caller.
 */
export async function until (check: () => boolean | Promise<boolean>, what: string, patience = 60_000): Promise<void> {
  const deadline = Date.now() + patience
  // A check that cannot be made yet (Redis reconnecting) is one that does not hold yet.
  while (!await Promise.resolve().then(check).catch(() => false)) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}`)
    await sleep(10)
  }
}

/** The queue's job counts, for assertions on what is stored. */
export async function counts (inbox: Inbox): Promise<Record<string, number>> {
  const { completed = 0, failed = 0, waiting = 0, active = 0, delayed = 0 } = await (await inbox.queue()).getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed')
  return { completed, failed, waiting, active, delayed }
}

/** The event ids of each entry of the received stream (requests' events, not yet fanned out), oldest first. */
export async function received (inbox: Inbox): Promise<string[][]> {
  const entries = await ((inbox as BullmqInbox).connection as Redis).xrange((inbox as BullmqInbox).received, '-', '+')
  return entries.map(([, fields]) => (JSON.parse(fields[1]!) as InboxJobData[]).map(event => event.id))
}

/** Waits until a worker fanned every received entry out into a job per event. */
export async function fannedOut (inbox: Inbox): Promise<void> {
  await until(async () => (await received(inbox)).length === 0, 'every received entry fanned out')
}

/**
 * A worker in a process of its own (`fixture`, under test/fixtures/), with `env`; `ready` resolves
 * once it says it runs (its first IPC message). SIGTERMed when the test ends, unless it already exited.
 */
export function workerProcess (t: Test, fixture: string, env: Record<string, string>): ChildProcess & { ready: Promise<unknown> } {
  const child = spawn(process.execPath, [...TYPESCRIPT_NODE_ARGS, `test/fixtures/${fixture}`], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  })
  return Object.assign(child, { ready: once(child, 'message') })
}
