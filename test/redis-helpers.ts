import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis, type RedisOptions } from 'ioredis'
import { Redis as Redis6, type RedisOptions as Redis6Options } from 'ioredis6'
import type { Test } from 'tap'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * As docs/guarantee.md ("Several replicas: Redis") tells hosts to configure it: a Redis that is down makes commands fail at once
 * (the plugin answers 503) instead of queueing them until it is back.
 */
export const CLIENT_OPTIONS = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 1000,
  retryStrategy: () => 50,
  lazyConnect: true
} satisfies RedisOptions & Redis6Options

/**
 * The ioredis majors redisStore is tested with: 5, and 6, which `npm i ioredis` installs since
 * 2026-07 and which speaks RESP3 unless told otherwise.
 */
export const IOREDIS_MAJORS = [5, 6] as const
export type IoredisMajor = typeof IOREDIS_MAJORS[number]

/** What the tests do with a client of either major, besides handing it to redisStore. */
export type TestClient = Pick<Redis, 'set' | 'get' | 'eval' | 'pttl' | 'del' | 'call' | 'disconnect'>

export async function connect (url = REDIS_URL, major: IoredisMajor = 5): Promise<TestClient> {
  const client = major === 6 ? new Redis6(url, CLIENT_OPTIONS) : new Redis(url, CLIENT_OPTIONS)
  client.on('error', () => {}) // reconnects are expected in these tests; commands report failures
  await client.connect()
  return client
}

/**
 * Whether the Redis these tests need is there. Without it they skip, loudly, on a laptop; under
 * CI they must run, so there its absence is a failure.
 */
export async function redisAvailable (t: Test, url = REDIS_URL): Promise<boolean> {
  guardDefaults(t)
  const client = new Redis(url, { ...CLIENT_OPTIONS, retryStrategy: () => null, connectTimeout: 1000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return true
  } catch {
    if (process.env.CI !== undefined) {
      t.fail(`Redis is not reachable at ${url}, and CI is set: the multi-replica tests must run`)
    } else {
      t.comment(`!!! SKIPPED: no Redis at ${url} (set REDIS_URL); the multi-replica idempotency tests did not run`)
      t.skip(`no Redis at ${url}`, async () => {})
    }
    return false
  } finally {
    client.disconnect()
  }
}

/**
 * The key prefixes a user's own app gets by default: `bullmqInbox({ connection })`'s queue
 * (`bull:provider-callbacks:*`, its claims under `bull:provider-callbacks:provider-callbacks:*`)
 * and `redisStore(client)`'s. A developer's app may use them on the Redis these tests share
 * (REDIS_URL), so no test writes under them there; a test of the defaults themselves runs on a
 * redis-server of its own (OwnRedis).
 */
export const DEFAULT_PREFIXES = ['bull:provider-callbacks:', 'provider-callbacks:'] as const

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]'])
const sharedRedis = new URL(REDIS_URL)
const sharedHost = LOOPBACK.has(sharedRedis.hostname) ? 'loopback' : sharedRedis.hostname
const sharedPort = Number(sharedRedis.port === '' ? 6379 : sharedRedis.port)
const sharedDb = Number(sharedRedis.pathname.slice(1) || 0)

/** Whether a client of these options talks to the shared Redis (REDIS_URL). */
function isShared (options: { host?: string, port?: number, db?: number, path?: string | null }): boolean {
  if (typeof options.path === 'string' && options.path !== '') return false
  const host = options.host === undefined || LOOPBACK.has(options.host) ? 'loopback' : options.host
  return host === sharedHost && Number(options.port ?? 6379) === sharedPort && Number(options.db ?? 0) === sharedDb
}

/** Commands this process sent to the shared Redis with an argument under a default prefix. */
const defaultWrites = new Set<string>()

// Every ioredis client of this process (BullMQ's included: it duplicates the ones it is given)
// sends each command, pipelined or not, through its sendCommand: one that names a key, or a key
// prefix (BullMQ's scripts take the queue's as an argument), under a default prefix on the shared
// Redis is noted, and the test file fails (guardDefaults). Only this process's clients are seen,
// so another process on the same Redis (a developer's app, another test file) cannot trip it.
for (const client of [Redis, Redis6] as unknown as Array<{ prototype: { sendCommand: (this: { options: object }, command: { name: string, args: unknown[] }, ...rest: unknown[]) => unknown } }>) {
  const send = client.prototype.sendCommand
  client.prototype.sendCommand = function (command, ...rest) {
    if (isShared(this.options)) {
      for (const arg of command.args) {
        const text = typeof arg === 'string' ? arg : Buffer.isBuffer(arg) ? arg.toString('latin1', 0, 64) : undefined
        if (text !== undefined && DEFAULT_PREFIXES.some(prefix => text.startsWith(prefix))) defaultWrites.add(`${command.name} ${text.slice(0, 120)}`)
      }
    }
    return send.call(this, command, ...rest)
  }
}

const guarded = new WeakSet<object>()

/** The file's root test. */
function rootOf (t: Test): Test {
  let root = t as unknown as { parent?: unknown }
  while (root.parent !== undefined) root = root.parent as { parent?: unknown }
  return root as unknown as Test
}

/**
 * Fails the test file if any of its clients sent the shared Redis a command under a default
 * prefix (DEFAULT_PREFIXES): checked once the file's tests are over. Called by redisAvailable,
 * which every test on the shared Redis calls first, and by cleanUp.
 */
export function guardDefaults (t: Test): void {
  const root = rootOf(t)
  if (guarded.has(root)) return
  guarded.add(root)
  root.teardown(() => {
    if (defaultWrites.size > 0) {
      throw new Error(`a test wrote under a default prefix (${DEFAULT_PREFIXES.join(', ')}) on the shared Redis ${REDIS_URL}, which a developer's own app may use: ${[...defaultWrites].slice(0, 10).join('; ')}`)
    }
  })
}

/** A glob that matches `text` itself (SCAN's MATCH). */
const literally = (text: string): string => text.replace(/[*?[\]\\]/g, '\\$&')

/**
 * Deletes every key under `prefix` on the Redis at `url`, with SCAN (KEYS would block a big
 * Redis); the number deleted. Refuses a prefix that would reach a default one on the shared Redis.
 */
export async function deleteKeys (prefix: string, url = REDIS_URL): Promise<number> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true })
  if (prefix === '' || (isShared(client.options) && DEFAULT_PREFIXES.some(given => given.startsWith(prefix) || prefix.startsWith(given)))) {
    throw new Error(`deleteKeys: not under ${JSON.stringify(prefix)} on the shared Redis, where a developer's own keys may be`)
  }
  client.on('error', () => {})
  try {
    await client.connect()
    let deleted = 0
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${literally(prefix)}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) deleted += await client.unlink(...keys)
    } while (cursor !== '0')
    return deleted
  } finally {
    client.disconnect()
  }
}

const pendingCleanUps = new Set<() => Promise<void>>()
const rootsCleaning = new WeakSet<object>()

/**
 * Runs `clean` when `t` ends, however it ended. tap stops running a test's teardowns at the first
 * that throws, so whatever did not run then runs when the file's root test ends.
 */
export function cleanUp (t: Test, clean: () => Promise<void>): void {
  guardDefaults(t)
  let running: Promise<void> | undefined
  const run = async (): Promise<void> => {
    pendingCleanUps.delete(run)
    await (running ??= clean())
  }
  pendingCleanUps.add(run)
  t.teardown(run)
  const root = rootOf(t)
  if (root === t || rootsCleaning.has(root)) return
  rootsCleaning.add(root)
  root.teardown(async () => {
    for (const left of [...pendingCleanUps]) await left().catch(() => {})
  })
}

/** Deletes every key under `prefix` on the Redis at `url` when `t` ends (cleanUp); `prefix`, for the test's use. */
export function cleanKeys (t: Test, prefix: string, url = REDIS_URL): string {
  cleanUp(t, async () => { await deleteKeys(prefix, url) })
  return prefix
}

/** `count` distinct free ports: held open together while they are chosen, so the system cannot hand one out twice. */
export async function freePorts (count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer())
  await Promise.all(servers.map(async server => await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))))
  const ports = servers.map(server => (server.address() as { port: number }).port)
  await Promise.all(servers.map(async server => await new Promise(resolve => server.close(resolve))))
  return ports
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

/** A redis-server of the test's own, on a port of its own, persisting to a folder of its own, so it can be stopped and started again without losing what it held. */
export class OwnRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'provider-callbacks-redis-'))
  #process: ChildProcess | undefined
  /** `args`: more of redis-server's options. */
  constructor (readonly port: number, readonly args: string[] = []) {}

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start (): Promise<void> {
    this.#process = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'always', '--dir', this.dir, '--daemonize', 'no', '--logfile', '', ...this.args
    ], { stdio: 'ignore' })
    // Only a redis-server that cannot start runs out of this; a busy machine must not.
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const client = new Redis(this.url, { ...CLIENT_OPTIONS, retryStrategy: () => null })
      client.on('error', () => {})
      try {
        await client.connect()
        await client.ping()
        client.disconnect()
        return
      } catch {
        client.disconnect()
        await sleep(50)
      }
    }
    throw new Error(`redis-server on port ${this.port} did not start`)
  }

  /** SIGTERM: Redis writes its append-only file and exits, as in a restart. SIGKILL: a crash, which keeps what the file has. */
  async stop (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.#process
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    await new Promise(resolve => {
      child.once('exit', resolve)
      child.kill(signal)
    })
  }

  async destroy (): Promise<void> {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/**
 * Starts `redis`: false (the test skips, loudly) where redis-server cannot start on a laptop; under
 * CI, where it must, its failure is the test's.
 */
export async function startedOrSkipped (t: Test, redis: OwnRedis): Promise<boolean> {
  try {
    await redis.start()
    return true
  } catch (error) {
    if (process.env.CI !== undefined) throw error
    t.comment('!!! SKIPPED: redis-server could not be started')
    return false
  }
}

/** A seeded pseudo-random generator (mulberry32), so a failing run can be repeated with its seed. */
export function seededRandom (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = Math.imul(state ^ (state >>> 15), 1 | state)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** What a counted client sent: every command, and the round trips it took. */
export interface CommandCount {
  /** Each command's name and, for EVAL, how many keys it carried. */
  commands: Array<{ name: string, keys: number }>
  /**
   * The longest chain of commands each sent only after the one before it was answered: the round
   * trips the work waited for in turn. Commands sent before any of the others came back (a
   * pipeline, or calls made without waiting) are one round trip, however many they are.
   */
  roundTrips: number
  reset: () => void
}

/**
 * The same client, counting what goes through it. A command sent once answers up to depth d had
 * come back is at depth d + 1; the round trips are the deepest command's depth.
 */
export function countCommands<C extends object> (client: C): { client: C, count: CommandCount } {
  let answered = 0
  const count: CommandCount = {
    commands: [],
    roundTrips: 0,
    reset: () => {
      count.commands = []
      count.roundTrips = 0
      answered = 0
    }
  }
  const counted = new Proxy(client, {
    get (target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function' || !['eval', 'evalsha', 'set', 'get', 'del', 'pexpire', 'call'].includes(String(property))) return value
      return (...args: unknown[]) => {
        const depth = answered + 1
        count.roundTrips = Math.max(count.roundTrips, depth)
        count.commands.push({ name: String(property), keys: property === 'eval' ? Number(args[1]) : 1 })
        const answer = Reflect.apply(value, target, args) as Promise<unknown>
        answer.then(() => { answered = Math.max(answered, depth) }, () => { answered = Math.max(answered, depth) })
        return answer
      }
    }
  })
  return { client: counted, count }
}

/**
 * A Redis Cluster of the test's own: three masters (no replicas) on free ports, each with its own
 * folder, made one cluster with `redis-cli --cluster create`. Undefined (the test skipped, loudly,
 * or failed under CI) when redis-server or redis-cli cannot be run.
 */
export async function ownCluster (t: Test): Promise<{ ports: number[] } | undefined> {
  const missing = ['redis-server', 'redis-cli'].filter(tool => spawnSync(tool, ['--version']).status !== 0)
  if (missing.length > 0) {
    if (process.env.CI !== undefined) t.fail(`${missing.join(' and ')} cannot be run, and CI is set: the Redis Cluster tests must run`)
    else {
      t.comment(`!!! SKIPPED: no ${missing.join(' or ')} on PATH; the Redis Cluster tests did not run`)
      t.skip(`no ${missing.join(' or ')}`, async () => {})
    }
    return undefined
  }
  const ports = await freePorts(3)
  const dir = mkdtempSync(join(tmpdir(), 'provider-callbacks-cluster-'))
  const nodes = ports.map(port => spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
    '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--logfile', ''
  ], { stdio: 'ignore' }))
  t.teardown(async () => {
    await Promise.all(nodes.map(async node => {
      if (node.exitCode !== null) return
      await new Promise(resolve => {
        node.once('exit', resolve)
        node.kill('SIGKILL')
      })
    }))
    rmSync(dir, { recursive: true, force: true })
  })
  const ping = async (port: number): Promise<string> => {
    const client = new Redis(port, '127.0.0.1', { ...CLIENT_OPTIONS, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
      return await client.call('CLUSTER', 'INFO') as string
    } catch {
      return ''
    } finally {
      client.disconnect()
    }
  }
  // Only nodes that cannot start run out of these; a busy machine must not.
  const wait = async (ready: (info: string) => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      if ((await Promise.all(ports.map(ping))).every(ready)) return
      await sleep(100)
    }
    throw new Error(`the Redis Cluster on ports ${ports.join(', ')}: ${what}`)
  }
  await wait(info => info !== '', 'the nodes did not start')
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map(port => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' })
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
  await wait(info => /cluster_state:ok/.test(info) && /cluster_known_nodes:3/.test(info), 'the cluster did not become ok')
  return { ports }
}
