// What storing a request's events costs this process per event, each of the ways the inbox could
// store them, on a redis-server of its own (random port, no persistence):
// - a job per event, `queue.add` each, all sent at once (a first version of the inbox did this);
// - a job per event in one `queue.addBulk`;
// - one BullMQ job holding every event, fanned out later (a second version);
// - one XADD holding every event, on a stream a worker fans out (what the inbox does).
// Events are the inbox's job data of a Voximplant callback; batches of 1, 10 and 100, interleaved
// over rounds; medians. By hand: node --import tsx bench/extras/bullmq-add.ts
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { jobData, jobIdOf } from '../../lib/inbox/job.js'
import { voximplantCallback } from '../../lib/testing.js'
import { freePort } from '../../test/redis-helpers.js'
import { SECRET } from '../protocol.js'

const port = await freePort()
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', ''], { stdio: 'ignore' })
await sleep(300)
const connection = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: null })
const queue = new Queue('bench-add', { connection })
await queue.waitUntilReady()

const EVENTS = 20_000
const CONCURRENCY = 10
const OPTIONS = { attempts: 25, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 3600 } }
let sequence = 0
const events = (n: number): Array<ReturnType<typeof jobData>> => Array.from({ length: n }, () => {
  const id = ++sequence
  const payload = voximplantCallback('min_balance', { callback_id: id }, SECRET)
  const receivedAt = new Date()
  return jobData({ provider: 'voximplant', name: 'min-balance', id: `voximplant:1234567:${id}`, payload, receivedAt, known: true } as never, receivedAt.toISOString())
})

type Variant = (batch: ReturnType<typeof events>) => Promise<unknown>
const variants: Record<string, Variant> = {
  'queue.add per event': async batch => await Promise.all(batch.map(async event => await queue.add(event.name, event, { ...OPTIONS, jobId: jobIdOf(event.id) }))),
  'addBulk, a job per event': async batch => await queue.addBulk(batch.map(event => ({ name: event.name, data: event, opts: { ...OPTIONS, jobId: jobIdOf(event.id) } }))),
  'one job holding the events': async batch => await queue.add('provider-callbacks:received', { events: batch }, { attempts: 2 ** 31 - 1, removeOnComplete: true, priority: 1 }),
  'one XADD holding the events': async batch => await connection.xadd('bench-received', '*', 'events', JSON.stringify(batch))
}

async function measure (variant: Variant, size: number): Promise<number> {
  const before = process.cpuUsage()
  let started = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (started++ < EVENTS / size) await variant(events(size))
  }))
  const used = process.cpuUsage(before)
  return (used.user + used.system) / EVENTS
}

const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const sizes = [1, 10, 100]
const results = new Map<string, number[]>()
for (let round = 0; round < 6; round++) {
  for (const size of sizes) {
    for (const [name, variant] of Object.entries(variants)) {
      const micros = await measure(variant, size)
      await connection.flushdb()
      // The first round warms up.
      if (round > 0) results.set(`${name}|${size}`, [...results.get(`${name}|${size}`) ?? [], micros])
    }
  }
}
console.log(`| stored as | ${sizes.map(size => `batch ${size}`).join(' | ')} |\n| --- |${sizes.map(() => ' ---: |').join('')}`)
for (const name of Object.keys(variants)) {
  console.log(`| ${name} | ${sizes.map(size => median(results.get(`${name}|${size}`)!).toFixed(1)).join(' | ')} |`)
}
console.log('\nThis process\'s CPU (user + system) per event, µs: the event\'s own share of the job\'s data included.')
await queue.close()
connection.disconnect()
server.kill()
