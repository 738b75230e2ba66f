// The inbox beside the synchronous path, in one interleaved run, on a redis-server of the bench's
// own (AOF, appendfsync everysec, as production would run it; flushed between runs, which the
// shared Redis never is): provider-facing req/s and p99, and a worker's throughput.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { bullmqInbox, createInboxWorker, type AnyProviderCallbackEvent } from '../lib/index.js'
import type { BullmqInbox } from '../lib/inbox/inbox.js'
import { fmt, median } from './report.js'

export class BenchRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'provider-callbacks-bench-redis-'))
  #process: ChildProcess | undefined
  port = 0
  get url (): string { return `redis://127.0.0.1:${this.port}` }

  async start (): Promise<boolean> {
    this.port = await new Promise<number>(resolve => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number }
        probe.close(() => { resolve(port) })
      })
    })
    this.#process = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--dir', this.dir, '--logfile', ''], { stdio: 'ignore' })
    this.#process.on('error', () => {})
    for (let i = 0; i < 100; i++) {
      const client = await this.client().catch(() => undefined)
      if (client !== undefined) {
        client.disconnect()
        return true
      }
      await sleep(100)
    }
    return false
  }

  async client (): Promise<Redis> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    await client.connect()
    await client.ping()
    return client
  }

  async flush (): Promise<void> {
    const client = await this.client()
    await client.flushall()
    client.disconnect()
  }

  async cpuSeconds (): Promise<number> {
    const client = await this.client()
    const info = await client.info('cpu')
    client.disconnect()
    const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN)
    return field('used_cpu_user') + field('used_cpu_sys')
  }

  stop (): void {
    this.#process?.kill('SIGKILL')
    rmSync(this.dir, { recursive: true, force: true })
  }
}

export interface WorkerRun { concurrency: number, events: number, eventsPerSec: number, cpuMicrosPerEvent: number, redisMicrosPerEvent: number }

/** `events` stored at once, then one worker of `concurrency` with a handler that does nothing: events/s until the last completed. */
export async function workerThroughput (redis: BenchRedis, concurrency: number, events: number): Promise<WorkerRun> {
  await redis.flush()
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null })
  const inbox = bullmqInbox({ connection, name: 'bench-worker' }) as BullmqInbox
  await inbox.connect()
  const receivedAt = new Date()
  for (let i = 0; i < events; i += 1000) {
    await inbox.enqueue(Array.from({ length: Math.min(1000, events - i) }, (_, j) => ({
      name: 'min-balance', provider: 'voximplant', id: `voximplant:1:${i + j}`, receivedAt, known: true, payload: { callback_id: i + j, type: 'min_balance' }
    }) as unknown as AnyProviderCallbackEvent))
  }
  let completed = 0
  let finished!: () => void
  const done = new Promise<void>(resolve => { finished = resolve })
  const cpu = process.cpuUsage()
  const redisBefore = await redis.cpuSeconds()
  const started = process.hrtime.bigint()
  const worker = createInboxWorker(inbox, { concurrency, onAny: () => {} })
  const bull = await worker.worker as { on(event: 'completed', listener: () => void): void }
  bull.on('completed', () => { if (++completed === events) finished() })
  await done
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const used = process.cpuUsage(cpu)
  const redisMicros = (await redis.cpuSeconds() - redisBefore) * 1e6
  await worker.close()
  await inbox.close()
  connection.disconnect()
  return { concurrency, events, eventsPerSec: events / seconds, cpuMicrosPerEvent: (used.user + used.system) / events, redisMicrosPerEvent: redisMicros / events }
}

export function workerTable (runs: WorkerRun[]): string[] {
  const rows = [1, 16].map(concurrency => {
    const of = runs.filter(run => run.concurrency === concurrency)
    return `| ${concurrency} | ${of[0]?.events ?? 0} | ${fmt(median(of.map(r => r.eventsPerSec)), 0)} | ${fmt(median(of.map(r => r.cpuMicrosPerEvent)))} | ${fmt(median(of.map(r => r.redisMicrosPerEvent)))} |`
  })
  return ['| worker concurrency | events | events/s | worker CPU µs/event | redis-server CPU µs/event |', '|---|---|---|---|---|', ...rows]
}
