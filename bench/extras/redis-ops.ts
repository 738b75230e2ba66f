// What a batch of 100 claims + 100 completes costs, per event, sent in each of the ways redisStore
// could send them: the client's CPU (this process, ioredis 5) and redis-server's (INFO cpu), on a
// redis-server of its own (random port, no persistence), keys piling up as in the bench.
// - eval: redisStore's own scripts, one per operation over all keys, the body sent each time (what redisStore does);
// - evalsha: the same scripts, loaded once;
// - pipeline / multi: native `SET key value PX ttl NX GET` and `SET key done PX ttl`, a command per key;
// - commands: the same native commands, each its own promise, written in the same tick.
// Interleaved over rounds; medians. By hand: node --import tsx bench/extras/redis-ops.ts
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { CLAIM, COMPLETE } from '../../lib/idempotency/redis.js'
import { freePort } from '../../test/redis-helpers.js'

const port = await freePort()
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', ''], { stdio: 'ignore' })
await sleep(300)
const client = new Redis(port, '127.0.0.1')
const info = new Redis(port, '127.0.0.1')
const redisCpu = async (): Promise<number> => {
  const text = await info.info('cpu')
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN)
  return field('used_cpu_user') + field('used_cpu_sys')
}

const claimSha = await client.script('LOAD', CLAIM) as string
const completeSha = await client.script('LOAD', COMPLETE) as string

const BATCH = 100
const BATCHES = 1500
const CONCURRENCY = 10
const CLAIM_TTL = 60_000
const WINDOW = 600_000
type Variant = (keys: string[], values: string[]) => Promise<unknown>
const variants: Record<string, Variant> = {
  eval: async (keys, values) => {
    await client.eval(CLAIM, keys.length, ...keys, CLAIM_TTL, ...values)
    await client.eval(COMPLETE, keys.length, ...keys, WINDOW, ...values)
  },
  evalsha: async (keys, values) => {
    await client.evalsha(claimSha, keys.length, ...keys, CLAIM_TTL, ...values)
    await client.evalsha(completeSha, keys.length, ...keys, WINDOW, ...values)
  },
  pipeline: async (keys, values) => {
    const claims = client.pipeline()
    keys.forEach((key, i) => claims.set(key, values[i]!, 'PX', CLAIM_TTL, 'NX', 'GET'))
    await claims.exec()
    const completes = client.pipeline()
    for (const key of keys) completes.set(key, 'done', 'PX', WINDOW)
    await completes.exec()
  },
  multi: async (keys, values) => {
    const claims = client.multi()
    keys.forEach((key, i) => claims.set(key, values[i]!, 'PX', CLAIM_TTL, 'NX', 'GET'))
    await claims.exec()
    const completes = client.multi()
    for (const key of keys) completes.set(key, 'done', 'PX', WINDOW)
    await completes.exec()
  },
  commands: async (keys, values) => {
    await Promise.all(keys.map(async (key, i) => await client.set(key, values[i]!, 'PX', CLAIM_TTL, 'NX', 'GET')))
    await Promise.all(keys.map(async key => await client.set(key, 'done', 'PX', WINDOW)))
  }
}

let sequence = 0
async function measure (variant: Variant): Promise<{ client: number, redis: number }> {
  const redisBefore = await redisCpu()
  const before = process.cpuUsage()
  let started = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (started++ < BATCHES) {
      const keys: string[] = []
      const values: string[] = []
      for (let i = 0; i < BATCH; i++) {
        keys.push(`provider-callbacks:voximplant:1234567:${++sequence}`)
        values.push(`claim:AAAAAAAAAAAAAAAA:${sequence}`)
      }
      await variant(keys, values)
    }
  }))
  const used = process.cpuUsage(before)
  const events = BATCHES * BATCH
  return { client: (used.user + used.system) / events, redis: (await redisCpu() - redisBefore) * 1e6 / events }
}

const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const results = new Map<string, Array<{ client: number, redis: number }>>()
for (let round = 0; round < 6; round++) {
  for (const [name, variant] of Object.entries(variants)) {
    const result = await measure(variant)
    // The first round warms up.
    if (round > 0) results.set(name, [...results.get(name) ?? [], result])
  }
}
console.log('| variant | client CPU µs/event | redis-server CPU µs/event |\n| --- | ---: | ---: |')
for (const [name, rows] of results) {
  console.log(`| ${name} | ${median(rows.map(r => r.client)).toFixed(2)} | ${median(rows.map(r => r.redis)).toFixed(2)} |`)
}
client.disconnect()
info.disconnect()
server.kill()
