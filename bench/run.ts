// npm run bench [-- --rounds N --duration S --warmup S --connections N --only a,b --scenario x,y --cpu-prof DIR]
//
// Every server runs as a process of its own on 127.0.0.1; autocannon loads it from this process.
// The servers are interleaved over rounds (each round: every server, every scenario, the order
// rotated), and the medians over the rounds are reported, with the plugin's ratios. Any answer but
// a 2xx with the seed's success body, or any socket error, ends the bench with exit code 1.
import autocannon from 'autocannon'
import { fork } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { EdisForms, SCENARIOS, VOX_1000, VoximplantItems, type Scenario } from './bodies.js'
import type { HeapResult } from './extras/heap.js'
import { SUCCESS_JSON, type WindowUsage } from './protocol.js'
import {
  fmt, machine, markdownTable, median, ms, ratios, ratiosSvg, ratiosTable, resultsTable, summarise, type Sample, type Summary
} from './report.js'
import { BenchError, killAll, ServerProcess } from './server-process.js'
import { BenchRedis, workerTable, workerThroughput, type WorkerRun } from './inbox.js'

const SERVERS = ['plugin', 'plugin-no-idempotency', 'fastify-bare', 'express', 'node-http']
const EXTRAS = 'extras'
const INBOX = 'inbox'
// Run only when named in --only: the plugin with telemetry off, with @opentelemetry/api but no SDK
// (the plugin server: the API is installed here), and under a registered SDK.
const TELEMETRY = 'telemetry'
const TELEMETRY_SERVERS = ['plugin-telemetry-off', 'plugin', 'plugin-otel-sdk']
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const HERE = new URL('.', import.meta.url)
// Per measured run, beyond warm-up and duration: starting the window, filling the hash pool.
const RUN_OVERHEAD_S = 0.6
const SPAWN_S = 1.5

const USAGE = `Usage: npm run bench [-- options]
  --rounds N        rounds; in each, every server runs every scenario once (default 3)
  --duration S      seconds of each measured run (default 4)
  --warmup S        seconds of warm-up before each measured run (default 1)
  --connections N   autocannon connections (default 10)
  --only LIST       servers to run, and/or "extras", "inbox": ${SERVERS.join(', ')}, ${EXTRAS}, ${INBOX} (default: all)
                    and/or "${TELEMETRY}" (only when named): the plugin with telemetry off, with no SDK, with an SDK
  --scenario LIST   scenarios of the main table: ${SCENARIOS.map(s => s.name).join(', ')} (default: all)
  --cpu-prof DIR    write each server process's CPU profile (node --cpu-prof) into DIR`

function fail (message: string): never {
  console.error(`${message}\n\n${USAGE}`)
  process.exit(2)
}

function options () {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '4' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '10' },
      only: { type: 'string' },
      scenario: { type: 'string' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) {
    console.log(USAGE)
    process.exit(0)
  }
  const number = (name: 'rounds' | 'duration' | 'warmup' | 'connections', integer: boolean): number => {
    const value = Number(values[name])
    if (!(value > 0) || (integer && !Number.isInteger(value))) fail(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${values[name]}`)
    return value
  }
  const list = (name: 'only' | 'scenario', known: string[]): string[] | undefined => {
    const given = values[name]?.split(',').map(s => s.trim()).filter(s => s !== '')
    const unknown = given?.filter(s => !known.includes(s)) ?? []
    if (unknown.length > 0) fail(`--${name}: unknown ${unknown.join(', ')}`)
    return given
  }
  const only = list('only', [...SERVERS, EXTRAS, INBOX, TELEMETRY])
  const scenarios = list('scenario', SCENARIOS.map(s => s.name))
  return {
    rounds: number('rounds', true),
    duration: number('duration', false),
    warmup: number('warmup', false),
    connections: number('connections', true),
    servers: SERVERS.filter(s => only === undefined || only.includes(s)),
    scenarios: SCENARIOS.filter(s => scenarios === undefined || scenarios.includes(s.name)),
    extras: only === undefined || only.includes(EXTRAS),
    telemetry: only?.includes(TELEMETRY) === true,
    inbox: only === undefined || only.includes(INBOX),
    execArgv: values['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`],
    argv: process.argv.slice(2).join(' ')
  }
}

const opts = options()
const log = (line: string): void => { console.error(line) }
const rotate = <T>(list: T[], by: number): T[] => list.map((_, i) => list[(i + by) % list.length]!)

const voximplant = new VoximplantItems()
const edis = new EdisForms()
const bodyOf = (scenario: Scenario): () => string =>
  scenario.path.endsWith('/edis') ? () => edis.form() : () => voximplant.batch(scenario.batch)

/** autocannon against one server; throws on any error, timeout, non-2xx or unexpected body. */
async function load (server: ServerProcess, scenario: Scenario, seconds: number): Promise<autocannon.Result> {
  const next = bodyOf(scenario)
  let firstFailure: string | undefined
  let wrongBodies = 0
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}`,
    connections: opts.connections,
    pipelining: 1,
    duration: seconds,
    timeout: 10,
    requests: [{
      method: 'POST',
      path: scenario.path,
      headers: { 'content-type': scenario.contentType },
      setupRequest: request => {
        request.body = next()
        return request
      },
      onResponse: (status, body) => {
        if (status >= 200 && status < 300 && body === SUCCESS_JSON) return
        if (status >= 200 && status < 300) wrongBodies++
        firstFailure ??= `HTTP ${status}: ${body.slice(0, 500)}`
      }
    }]
  })
  const problems = [
    result.errors > 0 && `${result.errors} socket errors`,
    result.timeouts > 0 && `${result.timeouts} timeouts`,
    result.non2xx > 0 && `${result.non2xx} non-2xx answers (${Object.entries(result.statusCodeStats).map(([code, { count }]) => `${code}: ${count}`).join(', ')})`,
    wrongBodies > 0 && `${wrongBodies} 2xx answers whose body was not ${SUCCESS_JSON}`,
    result.requests.total === 0 && 'no answer at all'
  ].filter(Boolean)
  if (problems.length > 0) {
    throw new BenchError(`bench FAILED: ${server.name}, ${scenario.name}: ${problems.join('; ')}${firstFailure === undefined ? '' : `\nfirst failure: ${firstFailure}`}`)
  }
  return result
}

type Plan = Array<{ server: string, scenarios: Scenario[], env?: (round: number) => Record<string, string> }>

// Req/s last measured per server and scenario: how many hashes to compute ahead of the next window.
const lastRate = new Map<string, number>()

/** Warm-up, then a measured window: one sample. */
async function sample (server: ServerProcess, scenario: Scenario, round: number): Promise<Sample & { usage: WindowUsage }> {
  const key = `${server.name}/${scenario.name}`
  // Hashes for the items `seconds` of load at `rate` req/s will send, with a margin.
  const prefill = (rate: number, seconds: number): void => {
    if (scenario.path.endsWith('/voximplant')) voximplant.prefill(Math.ceil(rate * scenario.batch * seconds * 1.3))
  }
  prefill(lastRate.get(key) ?? 0, opts.warmup)
  const warm = await load(server, scenario, opts.warmup)
  // The first warm-up may have been held back by hashing on the spot: guess high from it.
  const warmRate = warm.requests.total / warm.duration
  prefill(Math.max(lastRate.get(key) ?? warmRate * 2, warmRate), opts.duration)
  const onTheSpot = voximplant.onTheSpot
  const { result, usage } = await server.measure(scenario.batch, async () => await load(server, scenario, opts.duration))
  const answered = result.requests.total * scenario.batch
  if (usage.items < answered) {
    throw new BenchError(`bench FAILED: ${server.name}, ${scenario.name}: the server answered ${answered} items with success but its handler ran for ${usage.items}: deduplicated or dropped`)
  }
  const reqPerSec = result.requests.total / result.duration
  lastRate.set(key, reqPerSec)
  const out = {
    server: server.name,
    scenario: scenario.name,
    round,
    reqPerSec,
    itemsPerSec: reqPerSec * scenario.batch,
    p99Ms: result.latency.p99,
    cpuMicrosPerItem: usage.cpuMicros / usage.items,
    cpuPercent: usage.cpuMicros / (usage.elapsedMs * 10),
    onTheSpot: voximplant.onTheSpot - onTheSpot,
    usage
  }
  log(`  ${out.server.padEnd(22)} ${out.scenario.padEnd(8)} ${fmt(out.reqPerSec, 0).padStart(7)} req/s ${fmt(out.itemsPerSec, 0).padStart(8)} items/s  p99 ${ms(out.p99Ms)} ms  ${fmt(out.cpuMicrosPerItem)} µs/item  CPU ${fmt(out.cpuPercent, 0)}%${out.onTheSpot > 0 ? `  (${out.onTheSpot} hashes on the spot)` : ''}`)
  return out
}

/** Rounds of (servers x scenarios), both orders rotated each round; a fresh process per server and round. */
async function rounds (
  plan: Plan,
  each?: (server: ServerProcess, scenario: Scenario, measure: () => Promise<Sample & { usage: WindowUsage }>) => Promise<Sample>
): Promise<Sample[]> {
  const samples: Sample[] = []
  for (let round = 1; round <= opts.rounds; round++) {
    log(`round ${round}/${opts.rounds}`)
    for (const { server: name, scenarios, env } of rotate(plan, round - 1)) {
      const server = await ServerProcess.start(name, { execArgv: opts.execArgv, ...(env === undefined ? {} : { env: env(round) }) })
      voximplant.restart()
      try {
        for (const scenario of rotate(scenarios, round - 1)) {
          const measure = async (): Promise<Sample & { usage: WindowUsage }> => await sample(server, scenario, round)
          samples.push(each === undefined ? await measure() : await each(server, scenario, measure))
        }
      } finally {
        await server.stop()
      }
    }
  }
  return samples
}

async function heapExtra (): Promise<HeapResult> {
  const child = fork(fileURLToPath(new URL('extras/heap.ts', HERE)), [], { execArgv: ['--expose-gc', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return await new Promise((resolve, reject) => {
    let result: HeapResult | undefined
    child.on('message', (message: HeapResult) => { result = message })
    child.on('exit', code => {
      if (result !== undefined) resolve(result)
      else reject(new BenchError(`bench FAILED: the memoryStore heap measurement exited with code ${code} and no result`))
    })
  })
}

async function redisClient (): Promise<Redis | undefined> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return client
  } catch {
    client.disconnect()
    return undefined
  }
}

async function redisCpuSeconds (client: Redis): Promise<number> {
  const info = await client.info('cpu')
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN)
  return field('used_cpu_user') + field('used_cpu_sys')
}

async function deleteKeys (client: Redis, prefix: string): Promise<number> {
  let deleted = 0
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) deleted += await client.unlink(...keys)
  } while (cursor !== '0')
  return deleted
}

async function extras (): Promise<string[]> {
  const lines: string[] = ['## Extras', '']
  const redis = await redisClient()
  const prefix = `provider-callbacks-bench:${process.pid}-${Date.now()}:`
  const vox10 = SCENARIOS.find(s => s.name === 'vox-10')!
  const plan: Plan = [{ server: 'plugin', scenarios: [vox10, VOX_1000] }]
  // A prefix per process: each starts the id sequence over.
  if (redis !== undefined) plan.push({ server: 'plugin-redis', scenarios: [vox10], env: round => ({ BENCH_REDIS_PREFIX: `${prefix}${round}:`, REDIS_URL }) })
  const redisCpu: number[] = []
  log(`extras: the plugin at batch 1000 vs 10${redis === undefined ? '' : ', and with redisStore'}`)
  let samples: Sample[]
  try {
    samples = await rounds(plan, async (server, _scenario, measure) => {
      if (server.name !== 'plugin-redis') return await measure()
      const before = await redisCpuSeconds(redis!)
      const measured = await measure()
      redisCpu.push((await redisCpuSeconds(redis!) - before) * 1e6 / measured.usage.items)
      return measured
    })
  } finally {
    if (redis !== undefined) {
      const deleted = await deleteKeys(redis, prefix)
      log(`extras: deleted the ${deleted} keys the Redis store wrote`)
      redis.disconnect()
    }
  }
  const summaries = summarise(samples, ['plugin', 'plugin-redis'], ['vox-10', 'vox-1000'])
  const find = (server: string, scenario: string) => summaries.find(s => s.server === server && s.scenario === scenario)!
  const [at10, at1000] = [find('plugin', 'vox-10'), find('plugin', 'vox-1000')]
  const batchRatio = at1000.cpuMicrosPerItem / at10.cpuMicrosPerItem
  lines.push(
    '### (a) Plugin CPU per item, batch 1000 vs batch 10', '',
    markdownTable(['batch', 'req/s', 'items/s', 'p99 ms', 'CPU µs/item'], [at10, at1000].map(s => [s.scenario, fmt(s.reqPerSec, 0), fmt(s.itemsPerSec, 0), ms(s.p99Ms), fmt(s.cpuMicrosPerItem)])),
    '',
    `CPU per item at batch 1000 / at batch 10: **${fmt(batchRatio)}** (target ≤ 1.2: ${batchRatio <= 1.2 ? 'met' : 'NOT met'})`, ''
  )

  log('extras: heap of memoryStore({ max: 100000 })')
  const heap = await heapExtra()
  const mb = heap.heapBytes / 1e6
  lines.push(
    '### (b) Heap of `memoryStore({ max: 100000 })` full of done keys', '',
    `${heap.held} done keys \`voximplant:1234567:<id>\` held (after ${heap.inserted} claim + complete; the most the store holds within 100,000 writes): ` +
    `heapUsed grew by **${fmt(mb)} MB** (10^6 bytes), ${fmt(heap.heapBytes / heap.held, 0)} bytes per key; ` +
    `${fmt(heap.heapBytes / heap.held * 100_000 / 1e6)} MB for 100,000 (target ≤ 30 MB: ${mb <= 30 && heap.heapBytes / heap.held * 100_000 / 1e6 <= 30 ? 'met' : 'NOT met'}).`, ''
  )

  lines.push('### (c) Redis store vs memory store, plugin at batch 10', '')
  if (redis === undefined) {
    lines.push(`Skipped: no Redis at ${REDIS_URL} (start one, or set REDIS_URL).`, '')
  } else {
    const withRedis = find('plugin-redis', 'vox-10')
    const redisMicros = median(redisCpu)
    lines.push(
      markdownTable(['store', 'req/s', 'items/s', 'p99 ms', 'plugin CPU µs/item', 'redis-server CPU µs/item'], [
        ['memory', fmt(at10.reqPerSec, 0), fmt(at10.itemsPerSec, 0), ms(at10.p99Ms), fmt(at10.cpuMicrosPerItem), '–'],
        ['redis', fmt(withRedis.reqPerSec, 0), fmt(withRedis.itemsPerSec, 0), ms(withRedis.p99Ms), fmt(withRedis.cpuMicrosPerItem), fmt(redisMicros)]
      ]),
      '',
      `Added cost per event with redisStore: **${fmt(withRedis.cpuMicrosPerItem - at10.cpuMicrosPerItem)} µs** of the server's CPU ` +
      `(+ ${fmt(redisMicros)} µs in redis-server, ${REDIS_URL}); req/s redis / memory: **${fmt(withRedis.reqPerSec / at10.reqPerSec)}**.`, ''
    )
  }
  return lines
}

/** The cost of telemetry: the plugin with it off, with the API and no SDK, and under an SDK, interleaved. */
async function telemetry (): Promise<string[]> {
  log('telemetry: the plugin with telemetry off, with @opentelemetry/api and no SDK, and under an SDK')
  const samples = await rounds(TELEMETRY_SERVERS.map(server => ({ server, scenarios: opts.scenarios })))
  const names = opts.scenarios.map(s => s.name)
  const summaries = summarise(samples, TELEMETRY_SERVERS, names)
  const rows = names.map(scenario => {
    const [off, noSdk, sdk] = TELEMETRY_SERVERS.map(server => summaries.find(s => s.server === server && s.scenario === scenario)!) as [Summary, Summary, Summary]
    return [
      scenario,
      `${fmt(off.reqPerSec, 0)} (±${fmt(off.reqPerSecSpread * 50, 0)}%)`, `${fmt(noSdk.reqPerSec, 0)} (±${fmt(noSdk.reqPerSecSpread * 50, 0)}%)`, `${fmt(sdk.reqPerSec, 0)} (±${fmt(sdk.reqPerSecSpread * 50, 0)}%)`,
      fmt(noSdk.reqPerSec / off.reqPerSec), fmt(sdk.reqPerSec / off.reqPerSec),
      `${fmt(off.cpuMicrosPerItem)}, ${fmt(noSdk.cpuMicrosPerItem)}, ${fmt(sdk.cpuMicrosPerItem)}`,
      fmt(noSdk.cpuMicrosPerItem / off.cpuMicrosPerItem), fmt(sdk.cpuMicrosPerItem / off.cpuMicrosPerItem)
    ]
  })
  return [
    '## Telemetry', '',
    'The plugin with `telemetry: false` (off: `@opentelemetry/api` not loaded), with the API and no SDK (the default `plugin` server: nothing recorded), ' +
    'and under a registered SDK (`plugin-otel-sdk`: async-local-storage context, every span sampled and batched, metrics read every 10 s, exporters that discard). ' +
    'Medians of the rounds, each server a fresh process per round, interleaved; ± is half the spread of req/s over the rounds.', '',
    markdownTable(['scenario', 'off req/s', 'no SDK req/s', 'SDK req/s', 'no SDK / off (req/s)', 'SDK / off (req/s)', 'CPU µs/item: off, no SDK, SDK', 'no SDK / off (CPU)', 'SDK / off (CPU)'], rows),
    ''
  ]
}

const WORKER_EVENTS = 3000

/** The inbox beside the synchronous path, on a redis-server of the bench's own. */
async function inboxSection (): Promise<string[]> {
  const lines: string[] = ['## The inbox beside the synchronous path', '']
  const redis = new BenchRedis()
  if (!await redis.start()) {
    redis.stop()
    return [...lines, 'Skipped: redis-server could not be started.', '']
  }
  try {
    const scenarios = ['vox-1', 'vox-10', 'vox-100'].map(name => SCENARIOS.find(s => s.name === name)!)
    const vox10 = scenarios[1]!
    const env = (round: number): Record<string, string> => ({ REDIS_URL: redis.url, BENCH_INBOX_NAME: `bench-inbox-${round}`, BENCH_REDIS_PREFIX: `bench-${round}:` })
    const plan: Plan = [
      { server: 'plugin', scenarios },
      { server: 'plugin-redis', scenarios, env },
      { server: 'plugin-inbox', scenarios, env },
      { server: 'plugin-slow', scenarios: [vox10] },
      { server: 'plugin-inbox-worker', scenarios: [vox10], env }
    ]
    log(`inbox: the synchronous path (memoryStore, redisStore) and the inbox, on redis-server ${redis.url}`)
    const samples = await rounds(plan, async (_server, _scenario, measure) => {
      // What the previous run stored (hundreds of thousands of jobs) is not the next one's.
      await redis.flush()
      return await measure()
    })
    const servers = plan.map(p => p.server)
    const summaries = summarise(samples, servers, scenarios.map(s => s.name))
    const find = (server: string, scenario: string) => summaries.find(s => s.server === server && s.scenario === scenario)
    const label: Record<string, string> = {
      plugin: 'sync, memoryStore, no-op handler',
      'plugin-redis': 'sync, redisStore, no-op handler',
      'plugin-inbox': 'inbox (API replica, worker: false)',
      'plugin-slow': 'sync, memoryStore, 50 ms handler',
      'plugin-inbox-worker': 'inbox + worker in process (16), 50 ms handler'
    }
    lines.push(markdownTable(['batch', 'server', 'req/s', 'items/s', 'p99 ms', 'CPU µs/item', 'CPU %'],
      summaries.map(s => [s.scenario, label[s.server] ?? s.server, fmt(s.reqPerSec, 0), fmt(s.itemsPerSec, 0), ms(s.p99Ms), fmt(s.cpuMicrosPerItem), fmt(s.cpuPercent, 0)])), '')
    const targets: string[] = []
    for (const { name } of scenarios) {
      const inbox = find('plugin-inbox', name)!
      const memory = find('plugin', name)!
      const withRedis = find('plugin-redis', name)!
      const toMemory = inbox.reqPerSec / memory.reqPerSec
      const toRedis = inbox.reqPerSec / withRedis.reqPerSec
      targets.push(`- ${name}: inbox / sync memoryStore req/s **${fmt(toMemory)}** (target ≥ 0.5: ${toMemory >= 0.5 ? 'met' : 'NOT met'}); ` +
        `inbox / sync redisStore **${fmt(toRedis)}** (target ≥ 1: ${toRedis >= 1 ? 'met' : 'NOT met'})`)
    }
    const slowInbox = find('plugin-inbox-worker', 'vox-10')!
    const slowSync = find('plugin-slow', 'vox-10')!
    targets.push(`- vox-10, 50 ms handler: inbox p99 **${ms(slowInbox.p99Ms)} ms** (target < 20: ${slowInbox.p99Ms < 20 ? 'met' : 'NOT met'}), the synchronous path's ${ms(slowSync.p99Ms)} ms`)
    lines.push(...targets, '')

    log(`inbox: worker throughput, ${WORKER_EVENTS} events stored, then one worker`)
    const runs: WorkerRun[] = []
    for (let round = 1; round <= opts.rounds; round++) {
      for (const concurrency of round % 2 === 1 ? [1, 16] : [16, 1]) {
        const run = await workerThroughput(redis, concurrency, WORKER_EVENTS)
        log(`  worker concurrency ${String(concurrency).padStart(2)}: ${fmt(run.eventsPerSec, 0)} events/s, ${fmt(run.cpuMicrosPerEvent)} µs/event (runner process), redis ${fmt(run.redisMicrosPerEvent)} µs/event`)
        runs.push(run)
      }
    }
    lines.push('### Worker throughput (a handler that does nothing; medians over the rounds)', '', ...workerTable(runs), '',
      'The worker runs in the runner process, each run on a flushed redis-server: its CPU per event includes BullMQ\'s and the claim protocol\'s ' +
      '(claim, complete: two round trips per event beside BullMQ\'s own).', '')
  } finally {
    redis.stop()
  }
  return lines
}

async function main (): Promise<void> {
  const started = Date.now()
  const mainRuns = opts.servers.length * opts.scenarios.length * opts.rounds
  const extraRuns = (opts.extras ? 3 * opts.rounds : 0) + (opts.telemetry ? TELEMETRY_SERVERS.length * opts.scenarios.length * opts.rounds : 0)
  const spawns = (opts.servers.length + (opts.extras ? 2 : 0) + (opts.telemetry ? TELEMETRY_SERVERS.length : 0)) * opts.rounds
  const estimate = (mainRuns + extraRuns) * (opts.warmup + opts.duration + RUN_OVERHEAD_S) + spawns * SPAWN_S
  log(`bench: ${opts.servers.length} servers x ${opts.scenarios.length} scenarios x ${opts.rounds} rounds = ${mainRuns} runs` +
    `${opts.extras ? ` + ${extraRuns} extra runs` : ''}, ${opts.warmup} s warm-up + ${opts.duration} s each: about ${estimate < 120 ? `${Math.ceil(estimate)} s` : `${Math.ceil(estimate / 60)} min`}`)

  const report: string[] = ['# Benchmark results', '', machine(), `- run: \`npm run bench${opts.argv === '' ? '' : ` -- ${opts.argv}`}\`: ` +
    `${opts.rounds} rounds, ${opts.warmup} s warm-up + ${opts.duration} s measured per run, ${opts.connections} connections, autocannon in the runner process`, '']

  if (opts.servers.length > 0 && opts.scenarios.length > 0) {
    const samples = await rounds(opts.servers.map(server => ({ server, scenarios: opts.scenarios })))
    const scenarioNames = opts.scenarios.map(s => s.name)
    const summaries = summarise(samples, opts.servers, scenarioNames)
    const all = ratios(summaries, scenarioNames)
    report.push(`## Medians over ${opts.rounds} rounds`, '', resultsTable(summaries), '')
    // node-http does next to nothing: when it is not using a whole core, the load generator is what
    // holds every server back, and req/s ratios understate the differences that CPU per item shows.
    const clientBound = summaries.filter(s => s.server === 'node-http' && s.cpuPercent < 90)
    if (clientBound.length > 0) {
      report.push(`node-http, the ceiling, used less than a core in ${clientBound.map(s => `${s.scenario} (${fmt(s.cpuPercent, 0)}%)`).join(', ')}: ` +
        'the load generator, on the same 2 CPUs, was its limit, and is the limit of any server there that also shows well under 100% CPU; ' +
        'req/s ratios between such servers understate their differences, CPU µs/item does not. ' +
        'autocannon\'s latencies are whole milliseconds (0 is under 1 ms).', '')
    }
    const dry = summaries.filter(s => s.onTheSpot > 0)
    if (dry.length > 0) report.push(`Hash pool ran dry (the load generator hashed during the window) for: ${dry.map(s => `${s.server}/${s.scenario} (${s.onTheSpot})`).join(', ')}.`, '')
    if (all.length > 0) {
      report.push('## Plugin ratios', '',
        'req/s: above 1 is the plugin faster (target ≥ 0.9). CPU per item: above 1 is the plugin costlier. ' +
        'The last two columns take the plugin with `idempotency: false`: its own work (parsing, checks, schemas, events) without remembering events.',
        '', ratiosTable(all), '', '![req/s ratios](ratios.svg)', '')
      writeFileSync(new URL('ratios.svg', HERE), ratiosSvg(all))
    }
  }
  if (opts.extras) report.push(...await extras())
  if (opts.telemetry) report.push(...await telemetry())
  if (opts.inbox) report.push(...await inboxSection())

  const wall = (Date.now() - started) / 1000
  report.push('## How it was measured', '',
    '- Each server is a process of its own (`node --import tsx bench/servers/<name>.ts`) on 127.0.0.1, a fresh one per round; autocannon loads it from the runner process. The machine\'s CPUs are shared by both.',
    '- plugin: Fastify with the plugin (default in-memory idempotency), a counting handler on `onAny`; plugin-no-idempotency: the same with `idempotency: false`; fastify-bare and express: the same checks written by hand (md5 + timingSafeEqual per item, EDIS\'s fields present), a counter per item; node-http: reads the body and answers the fixed success body.',
    '- Every request carries fresh ids (Voximplant `callback_id`, EDIS `kvm`), so nothing is deduplicated; bodies are the test kit\'s, signed with apiKey `bench-key`, salt `bench-salt`. Hashes are computed ahead of each window.',
    '- CPU µs/item: the server process\'s `process.cpuUsage()` (user + system, all its threads) over the measured window, divided by the items its handler counted. Server CPU %: that CPU time over the window\'s wall time (100 = one core).',
    '- req/s spread: (max − min) / median over the rounds.',
    '- Express runs with its defaults (ETag, X-Powered-By); Fastify with `logger: false`.',
    `- Total wall time: ${fmt(wall / 60)} min.`, '')

  const text = report.join('\n')
  writeFileSync(new URL('results.md', HERE), text)
  console.log(text)
  log(`bench: done in ${fmt(wall, 0)} s; wrote bench/results.md${text.includes('ratios.svg') ? ' and bench/ratios.svg' : ''}`)
}

process.on('SIGINT', () => {
  killAll()
  process.exit(130)
})

try {
  await main()
} catch (error) {
  killAll()
  console.error(error instanceof BenchError ? error.message : error)
  process.exit(1)
}
