// npm run bench [-- --rounds N --duration S --warmup S --connections N --only a,b --scenario x,y --cpu-prof DIR]
//
// Every server runs as a process of its own on 127.0.0.1; autocannon loads it from this process.
// The servers are interleaved over rounds (each round: every server, every scenario, the order
// rotated), and the medians over the rounds are reported, with the plugin's ratios. Any answer but
// a 2xx with the seed's success body, or any socket error, ends the bench with exit code 1.
import autocannon from 'autocannon'
import { fork, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import providerCallbacks, { memoryStore, redisStore } from '../lib/index.js'
import { countCommands, freePort } from '../test/redis-helpers.js'
import { EdisForms, SCENARIOS, VOX_1000, VoximplantItems, type Scenario } from './bodies.js'
import type { HeapResult } from './extras/heap.js'
import type { MapCostResult } from './extras/map-cost.js'
import { SECRET, SUCCESS_JSON, type WindowUsage } from './protocol.js'
import {
  fmt, machine, markdownTable, median, ms, ratios, ratiosSvg, ratiosTable, resultsTable, summarise, type Sample, type Summary
} from './report.js'
import { BenchError, killAll, ServerProcess } from './server-process.js'
import { othersLoad } from './machine-load.js'
import { BenchRedis, workerTable, workerThroughput, type WorkerRun } from './inbox.js'
import { CHECK_SCENARIOS, CHECK_SERVERS, EXTRA_ROUNDS, FLOORS, MAX_OTHERS_PERCENT, MIN_JUDGED, capacityRatios, checkTable } from './check.js'

// --check --baseline DIR: the plugin as DIR (another worktree, built) has it, beside today's.
const BASELINE = 'plugin-baseline'
const SERVERS = ['plugin', 'plugin-redis', 'plugin-postgres', 'plugin-no-idempotency', 'fastify-bare', 'express', 'node-http']
const EXTRAS = 'extras'
const SHARED_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const INBOX = 'inbox'
// plugin and plugin-redis again, with the bench's redis-server on a CPU of its own and the runner
// and servers on the other: Redis as production runs it, on another machine, not taking its CPU
// from the server it serves.
const REDIS_OWN_CPU = 'redis-own-cpu'
// Run only when named in --only: the plugin with telemetry off, with @opentelemetry/api but no SDK
// (the plugin server: the API is installed here), and under a registered SDK.
const TELEMETRY = 'telemetry'
const TELEMETRY_SERVERS = ['plugin-telemetry-off', 'plugin', 'plugin-otel-sdk']
const HERE = new URL('.', import.meta.url)
// Per measured run, beyond warm-up and duration: starting the window, filling the hash pool.
const RUN_OVERHEAD_S = 0.6
const SPAWN_S = 1.5

const USAGE = `Usage: npm run bench [-- options]
  --rounds N        rounds; in each, every server runs every scenario once (default 3)
  --duration S      seconds of each measured run (default 4)
  --warmup S        seconds of warm-up before each measured run (default 1)
  --connections N   autocannon connections (default 10)
  --only LIST       servers to run, and/or "extras", "inbox", "${REDIS_OWN_CPU}": ${SERVERS.join(', ')}, ${EXTRAS}, ${INBOX}, ${REDIS_OWN_CPU} (default: all)
                    and/or "${TELEMETRY}" (only when named): the plugin with telemetry off, with no SDK, with an SDK
  --scenario LIST   scenarios of the main table: ${SCENARIOS.map(s => s.name).join(', ')} (default: all)
  --cpu-prof DIR    write each server process's CPU profile (node --cpu-prof) into DIR
  --baseline DIR    with --check: also the plugin as built in DIR (a worktree of another commit, npm run build
                    done there), its capacity ratios beside today's: a before/after from one interleaved run
  --check           the regression guard: ${CHECK_SERVERS.join(', ')} on ${CHECK_SCENARIOS.join(', ')} (or --scenario),
                    5 rounds of 2 s unless given; fails (exit code 1) when the plugin's median capacity
                    ratio is below ${FLOORS['fastify-bare']} of fastify-bare's or ${FLOORS.express} of Express's; writes no results file.
                    Judges only rounds in which other processes took at most ${MAX_OTHERS_PERCENT}% of a core, ${MIN_JUDGED} of them at least
                    (up to ${EXTRA_ROUNDS} rounds more); fewer, and it says NOT JUDGED (the machine is busy) and exits 0`

function fail (message: string): never {
  console.error(`${message}\n\n${USAGE}`)
  process.exit(2)
}

function options () {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      check: { type: 'boolean' },
      connections: { type: 'string', default: '10' },
      only: { type: 'string' },
      scenario: { type: 'string' },
      'cpu-prof': { type: 'string' },
      baseline: { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) {
    console.log(USAGE)
    process.exit(0)
  }
  const check = values.check === true
  // --check: shorter windows, more rounds (the median of more pairs is what makes it steady).
  const defaults = { rounds: check ? '5' : '3', duration: check ? '2' : '4', warmup: '1', connections: '10' }
  const number = (name: 'rounds' | 'duration' | 'warmup' | 'connections', integer: boolean): number => {
    const value = Number(values[name] ?? defaults[name])
    if (!(value > 0) || (integer && !Number.isInteger(value))) fail(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${values[name]}`)
    return value
  }
  const list = (name: 'only' | 'scenario', known: string[]): string[] | undefined => {
    const given = values[name]?.split(',').map(s => s.trim()).filter(s => s !== '')
    const unknown = given?.filter(s => !known.includes(s)) ?? []
    if (unknown.length > 0) fail(`--${name}: unknown ${unknown.join(', ')}`)
    return given
  }
  const only = check ? CHECK_SERVERS : list('only', [...SERVERS, EXTRAS, INBOX, REDIS_OWN_CPU, TELEMETRY])
  const scenarios = list('scenario', SCENARIOS.map(s => s.name)) ?? (check ? CHECK_SCENARIOS : undefined)
  if (check && values.only !== undefined) fail('--check runs its own servers: no --only with it')
  if (values.baseline !== undefined && !check) fail('--baseline is for --check')
  return {
    rounds: number('rounds', true),
    duration: number('duration', false),
    warmup: number('warmup', false),
    connections: number('connections', true),
    servers: [...(check ? CHECK_SERVERS : SERVERS.filter(s => only === undefined || only.includes(s))), ...(values.baseline === undefined ? [] : [BASELINE])],
    baseline: values.baseline,
    scenarios: SCENARIOS.filter(s => scenarios === undefined || scenarios.includes(s.name)),
    extras: only === undefined || only.includes(EXTRAS),
    telemetry: only?.includes(TELEMETRY) === true,
    inbox: only === undefined || only.includes(INBOX),
    redisOwnCpu: only === undefined || only.includes(REDIS_OWN_CPU),
    check,
    execArgv: values['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`],
    argv: process.argv.slice(2).join(' ')
  }
}

const opts = options()
// The servers run the plugin as tsc builds it (bench/packaged.mjs): build it from the source as it is now.
if (spawnSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], { stdio: 'inherit' }).status !== 0) {
  console.error('bench: the build failed')
  process.exit(1)
}
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
  // Hashes for the items `seconds` of load at `rate` req/s will send, with a margin: a pool that runs
  // dry has the load generator hash during the window, taking CPU from the server it measures.
  const prefill = (rate: number, seconds: number): void => {
    if (scenario.path.endsWith('/voximplant')) voximplant.prefill(Math.ceil(rate * scenario.batch * seconds * 1.5))
  }
  // The fastest any server of this scenario was so far: this one may be as fast this time.
  const fastest = Math.max(0, ...[...lastRate].filter(([k]) => k.endsWith(`/${scenario.name}`)).map(([, rate]) => rate))
  prefill(Math.max(lastRate.get(key) ?? 0, fastest), opts.warmup)
  const warm = await load(server, scenario, opts.warmup)
  // The first warm-up may have been held back by hashing on the spot: guess high from it.
  const warmRate = warm.requests.total / warm.duration
  prefill(Math.max(lastRate.get(key) ?? warmRate * 2, warmRate, fastest), opts.duration)
  const onTheSpot = voximplant.onTheSpot
  const others = othersLoad()
  const { result, usage } = await server.measure(scenario.batch, async () => await load(server, scenario, opts.duration))
  const othersPercent = others(usage.cpuMicros)
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
    othersPercent,
    onTheSpot: voximplant.onTheSpot - onTheSpot,
    usage
  }
  log(`  ${out.server.padEnd(22)} ${out.scenario.padEnd(8)} ${fmt(out.reqPerSec, 0).padStart(7)} req/s ${fmt(out.itemsPerSec, 0).padStart(8)} items/s  p99 ${ms(out.p99Ms)} ms  ${fmt(out.cpuMicrosPerItem)} µs/item  CPU ${fmt(out.cpuPercent, 0)}%${othersPercent === undefined ? '' : `, others ${fmt(othersPercent, 0)}%`}${out.onTheSpot > 0 ? `  (${out.onTheSpot} hashes on the spot)` : ''}`)
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

async function extraProcess<T> (file: string, execArgv: string[], what: string): Promise<T> {
  const child = fork(fileURLToPath(new URL(file, HERE)), [], { execArgv: [...execArgv, '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return await new Promise((resolve, reject) => {
    let result: T | undefined
    child.on('message', (message: T) => { result = message })
    child.on('exit', code => {
      if (result !== undefined) resolve(result)
      else reject(new BenchError(`bench FAILED: ${what} exited with code ${code} and no result`))
    })
  })
}

async function redisClient (url: string): Promise<Redis | undefined> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
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

/**
 * The Redis plugin-redis runs against: a redis-server of the bench's own (no persistence, a port
 * of its own), so that its CPU time is the plugin's load alone; else REDIS_URL's, shared.
 */
async function benchRedis (): Promise<{ url: string, client: Redis, own: boolean, pid?: number, stop: () => Promise<void> } | undefined> {
  if (process.env.REDIS_URL === undefined && spawnSync('redis-server', ['--version']).status === 0) {
    const port = await freePort()
    const dir = mkdtempSync(join(tmpdir(), 'provider-callbacks-bench-redis-'))
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', ''], { stdio: 'ignore' })
    const url = `redis://127.0.0.1:${port}`
    const stop = async (): Promise<void> => {
      if (child.exitCode === null) await new Promise(resolve => { child.once('exit', resolve); child.kill('SIGTERM') })
      rmSync(dir, { recursive: true, force: true })
    }
    for (let tries = 0; tries < 100; tries++) {
      const client = await redisClient(url)
      if (client !== undefined) return { url, client, own: true, pid: child.pid!, stop }
      await sleep(50)
    }
    await stop()
  }
  const client = await redisClient(SHARED_REDIS_URL)
  return client === undefined ? undefined : { url: SHARED_REDIS_URL, client, own: false, stop: async () => {} }
}

/** Round trips and commands of one request of each scenario, in this process, through a counted client. */
async function roundTripsPerRequest (url: string, prefix: string): Promise<Map<string, { roundTrips: number, commands: number }>> {
  const raw = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000 })
  await raw.connect()
  const { client, count } = countCommands(raw)
  const app = Fastify({ logger: false })
  await app.register(providerCallbacks, { edis: {}, voximplant: { secret: SECRET }, idempotency: { store: redisStore(client, { prefix }) } })
  app.providerCallbacks.onAny(() => {})
  const found = new Map<string, { roundTrips: number, commands: number }>()
  const forms = new EdisForms()
  const items = new VoximplantItems()
  try {
    for (const scenario of SCENARIOS) {
      count.reset()
      const res = await app.inject({ method: 'POST', url: scenario.path, headers: { 'content-type': scenario.contentType }, payload: scenario.path.endsWith('/edis') ? forms.form() : items.batch(scenario.batch) })
      if (res.statusCode !== 200) throw new BenchError(`bench FAILED: counting round trips, ${scenario.name}: HTTP ${res.statusCode} ${res.body}`)
      found.set(scenario.name, { roundTrips: count.roundTrips, commands: count.commands.length })
    }
  } finally {
    await app.close()
    raw.disconnect()
  }
  return found
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
  const vox10 = SCENARIOS.find(s => s.name === 'vox-10')!
  const plan: Plan = [{ server: 'plugin', scenarios: [vox10, VOX_1000] }]
  log('extras: the plugin at batch 1000 vs 10')
  const samples = await rounds(plan)
  const summaries = summarise(samples, ['plugin'], ['vox-10', 'vox-1000'])
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
  const heap = await extraProcess<HeapResult>('extras/heap.ts', ['--expose-gc'], 'the memoryStore heap measurement')
  const mb = heap.heapBytes / 1e6
  lines.push(
    '### (b) Heap of `memoryStore({ max: 100000 })` full of done keys', '',
    `${heap.held} done keys \`voximplant:1234567:<id>\` held (after ${heap.inserted} claim + complete; the most the store holds within 100,000 writes): ` +
    `heapUsed grew by **${fmt(mb)} MB** (10^6 bytes), ${fmt(heap.heapBytes / heap.held, 0)} bytes per key; ` +
    `${fmt(heap.heapBytes / heap.held * 100_000 / 1e6)} MB for 100,000 (target ≤ 30 MB: ${mb <= 30 && heap.heapBytes / heap.held * 100_000 / 1e6 <= 30 ? 'met' : 'NOT met'}).`, ''
  )

  log('extras: what remembering a key costs in V8')
  const cost = await extraProcess<MapCostResult>('extras/map-cost.ts', [], 'the Map cost measurement')
  const [keyOnly, plainMap, store] = cost.rows
  lines.push(
    '### (c) What remembering a key costs in V8, per event', '',
    `${cost.events.toLocaleString('en-US')} fresh keys \`voximplant:1234567:<id>\` in one process, each table in steady state at ${cost.size.toLocaleString('en-US')} keys (what \`memoryStore()\`, max 10,000, holds on average); \`bench/extras/map-cost.ts\`.`, '',
    markdownTable(['per event', 'CPU ns', 'of which GC'], cost.rows.map(row => [row.variant, fmt(row.nsPerEvent, 0), `${fmt(row.gcShare * 100, 0)}%`])),
    '',
    `A plain Map set + delete costs ${fmt(plainMap!.nsPerEvent - keyOnly!.nsPerEvent, 0)} ns per event beyond making the key; memoryStore's claim + complete ${fmt(store!.nsPerEvent - keyOnly!.nsPerEvent, 0)} ns.`, ''
  )
  return lines
}

interface InProcess { store: string, msPerRequest: number, cpuMicrosPerEvent: number, redisMicrosPerEvent: number }

/**
 * The plugin in the runner's own process, no HTTP and no load generator: batches of 100 sent by
 * app.inject, 10 at a time, with memoryStore and with redisStore, alternately, 3 times each. With
 * two processes instead of three on the two CPUs, it shows what redisStore costs when the one
 * round trip in each direction is not also waiting for a CPU.
 */
async function inProcess (redis: { url: string, client: Redis }, prefix: string): Promise<InProcess[]> {
  const raw = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000 })
  await raw.connect()
  const results: InProcess[] = []
  try {
    for (let round = 0; round < 3; round++) {
      for (const store of ['memoryStore', 'redisStore']) {
        const app = Fastify({ logger: false })
        await app.register(providerCallbacks, {
          voximplant: { secret: SECRET },
          idempotency: { store: store === 'redisStore' ? redisStore(raw, { prefix: `${prefix}${round}:` }) : memoryStore(), voximplantWindow: 10 * 60 * 1000 }
        })
        app.providerCallbacks.onAny(() => {})
        const items = new VoximplantItems()
        items.prefill(2 * 300 * 100)
        const post = async (): Promise<void> => {
          const res = await app.inject({ method: 'POST', url: '/callbacks/voximplant', headers: { 'content-type': 'application/json' }, payload: items.batch(100) })
          if (res.statusCode !== 200) throw new BenchError(`bench FAILED: in-process ${store}: HTTP ${res.statusCode} ${res.body}`)
        }
        const requests = async (count: number): Promise<void> => { await Promise.all(Array.from({ length: 10 }, async () => { for (let i = 0; i < count / 10; i++) await post() })) }
        await requests(100) // warm-up
        const redisBefore = await redisCpuSeconds(redis.client)
        const cpu = process.cpuUsage()
        const started = performance.now()
        await requests(300)
        const elapsed = performance.now() - started
        const used = process.cpuUsage(cpu)
        const redisUsed = await redisCpuSeconds(redis.client) - redisBefore
        results.push({ store, msPerRequest: elapsed / 300, cpuMicrosPerEvent: (used.user + used.system) / 30_000, redisMicrosPerEvent: store === 'redisStore' ? redisUsed * 1e6 / 30_000 : NaN })
        await app.close()
      }
    }
  } finally {
    raw.disconnect()
  }
  return results
}

function inProcessSection (results: InProcess[]): string[] {
  const of = (store: string, key: 'msPerRequest' | 'cpuMicrosPerEvent' | 'redisMicrosPerEvent'): number => median(results.filter(r => r.store === store).map(r => r[key]))
  const ratio = of('memoryStore', 'msPerRequest') / of('redisStore', 'msPerRequest')
  return ['### redisStore in the runner\'s own process, batches of 100', '',
    'No HTTP, no load generator: `app.inject`, 10 batches of 100 at a time, 300 measured after 100 of warm-up; memoryStore and redisStore alternately, medians of 3. ' +
    'CPU is the runner process\'s (the plugin and inject), and redis-server\'s.', '',
    markdownTable(['store', 'ms per request', 'CPU µs/event', 'redis-server CPU µs/event'],
      ['memoryStore', 'redisStore'].map(store => [store, fmt(of(store, 'msPerRequest')), fmt(of(store, 'cpuMicrosPerEvent')), fmt(of(store, 'redisMicrosPerEvent'))])),
    '', `Requests per second, redisStore / memoryStore, in process: **${fmt(ratio)}**.`, '']
}

function redisSection (summaries: Summary[], scenarios: string[], redisCpu: Map<string, number[]>, counted: Map<string, { roundTrips: number, commands: number }>, where: string): string[] {
  const find = (server: string, scenario: string): Summary | undefined => summaries.find(s => s.server === server && s.scenario === scenario)
  const rows: string[][] = []
  for (const scenario of scenarios) {
    const memory = find('plugin', scenario)
    const redis = find('plugin-redis', scenario)
    const bare = find('fastify-bare', scenario)
    if (redis === undefined) continue
    const trips = counted.get(scenario)
    rows.push([
      scenario, fmt(memory?.reqPerSec, 0), fmt(redis.reqPerSec, 0), fmt(memory && redis.reqPerSec / memory.reqPerSec), fmt(bare && redis.reqPerSec / bare.reqPerSec),
      fmt(memory?.cpuMicrosPerItem), fmt(redis.cpuMicrosPerItem), fmt(median(redisCpu.get(scenario) ?? [])),
      trips === undefined ? '–' : `${trips.roundTrips} (${trips.commands} commands)`
    ])
  }
  const at100 = find('plugin-redis', 'vox-100')
  const memory100 = find('plugin', 'vox-100')
  const ratio100 = at100 && memory100 && at100.reqPerSec / memory100.reqPerSec
  const maxTrips = Math.max(...[...counted.values()].map(c => c.roundTrips))
  return ['## redisStore against memoryStore', '',
    `plugin-redis is the plugin with \`redisStore\` over ioredis 5 (${where}); plugin is the default \`memoryStore\`. ` +
    'Round trips: one request of each scenario through a counted client, in the runner (the longest chain of commands each sent after the one before was answered).', '',
    markdownTable(['scenario', 'memoryStore req/s', 'redisStore req/s', 'redis / memory (req/s)', 'redis / bare (req/s)', 'plugin CPU µs/event, memory', 'plugin CPU µs/event, redis', 'redis-server CPU µs/event', 'Redis round trips per request'], rows),
    '',
    `Redis round trips per request: at most **${maxTrips}** whatever the batch (target ≤ 3: ${maxTrips <= 3 ? 'met' : 'NOT met'}). ` +
    (ratio100 === undefined ? '' : `redisStore / memoryStore req/s at batch 100: **${fmt(ratio100)}** (target ≥ 0.7: ${ratio100 >= 0.7 ? 'met' : 'NOT met'}).`), '']
}

/** Pins every thread of a process to `cpus` (taskset's list: '0', '1', '0-1'); children started after inherit it. */
function pin (pid: number, cpus: string): void {
  const result = spawnSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' })
  if (result.status !== 0) throw new BenchError(`bench FAILED: taskset -a -cp ${cpus} ${pid} did not work`)
}

/** memoryStore and redisStore, interleaved, with redis-server on a CPU of its own and the rest on another. */
async function redisOwnCpuSection (): Promise<string[]> {
  const title = ['## redisStore against memoryStore, Redis on a CPU of its own', '']
  const count = availableParallelism()
  if (count < 2 || spawnSync('taskset', ['-V']).status !== 0) return [...title, `Skipped: it needs taskset and 2 CPUs (${count} here).`, '']
  const redis = await benchRedis()
  if (redis?.pid === undefined) {
    await redis?.stop()
    redis?.client.disconnect()
    return [...title, 'Skipped: it needs a redis-server of the bench\'s own (redis-server on PATH, REDIS_URL unset).', '']
  }
  const last = String(count - 1)
  const rest = count === 2 ? '0' : `0-${count - 2}`
  const prefix = `provider-callbacks-bench:${process.pid}-${Date.now()}-own-cpu:`
  const redisCpu = new Map<string, number[]>()
  let samples: Sample[]
  log(`${REDIS_OWN_CPU}: redis-server on CPU ${last}, the runner and its servers on CPU ${rest}`)
  pin(redis.pid, last)
  pin(process.pid, rest)
  try {
    samples = await rounds(['plugin', 'plugin-redis'].map(server => ({
      server,
      scenarios: opts.scenarios,
      ...(server === 'plugin-redis' ? { env: (round: number) => ({ BENCH_REDIS_PREFIX: `${prefix}${round}:`, REDIS_URL: redis.url }) } : {})
    })), async (server, scenario, measure) => {
      if (server.name !== 'plugin-redis') return await measure()
      const before = await redisCpuSeconds(redis.client)
      const measured = await measure()
      redisCpu.set(scenario.name, [...redisCpu.get(scenario.name) ?? [], (await redisCpuSeconds(redis.client) - before) * 1e6 / measured.usage.items])
      return measured
    })
  } finally {
    pin(process.pid, `0-${count - 1}`)
    await deleteKeys(redis.client, prefix)
    redis.client.disconnect()
    await redis.stop()
  }
  const names = opts.scenarios.map(s => s.name)
  const summaries = summarise(samples, ['plugin', 'plugin-redis'], names)
  const find = (server: string, scenario: string): Summary => summaries.find(s => s.server === server && s.scenario === scenario)!
  const rows = names.map(scenario => {
    const memory = find('plugin', scenario)
    const withRedis = find('plugin-redis', scenario)
    return [scenario, fmt(memory.reqPerSec, 0), fmt(withRedis.reqPerSec, 0), fmt(withRedis.reqPerSec / memory.reqPerSec),
      fmt(memory.cpuMicrosPerItem), fmt(withRedis.cpuMicrosPerItem), fmt(median(redisCpu.get(scenario) ?? []))]
  })
  const at100 = names.includes('vox-100') ? find('plugin-redis', 'vox-100').reqPerSec / find('plugin', 'vox-100').reqPerSec : undefined
  return [...title,
    `The same two servers, with the bench's redis-server pinned to CPU ${last} and the runner (autocannon) and the servers to CPU ${rest} ` +
    '(taskset), in both configurations: Redis then takes no CPU from the server it serves, as on a machine of its own in production. ' +
    'The load generator shares the server\'s CPU, so req/s are lower than in the table above; compare the ratios.', '',
    markdownTable(['scenario', 'memoryStore req/s', 'redisStore req/s', 'redis / memory (req/s)', 'plugin CPU µs/event, memory', 'plugin CPU µs/event, redis', 'redis-server CPU µs/event'], rows), '',
    ...(at100 === undefined ? [] : [`redisStore / memoryStore req/s at batch 100, Redis on a CPU of its own: **${fmt(at100)}** (target ≥ 0.7: ${at100 >= 0.7 ? 'met' : 'NOT met'}).`, ''])]
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

// --check: each server's window cut into this many slices, taken in turn from the servers, all alive
// at once: what the host does to the machine over seconds (another guest, the clock) falls on every
// server alike, where whole windows a server apart would each meet a different moment.
const SLICES = 4

/** One round of the check: every server at once, each scenario's windows sliced and interleaved. */
async function checkRound (round: number, last: number, scenarios: Scenario[]): Promise<Sample[]> {
  log(`round ${round}/${last}`)
  const servers: ServerProcess[] = []
  const samples: Sample[] = []
  try {
    for (const name of rotate(opts.servers, round - 1)) {
      const env = name === BASELINE ? { BENCH_BASELINE_ROOT: opts.baseline! } : undefined
      servers.push(await ServerProcess.start(name, { execArgv: opts.execArgv, ...(env === undefined ? {} : { env }) }))
    }
    // Ids unique across this round's servers: each has a fresh store of its own.
    voximplant.restart()
    for (const scenario of rotate(scenarios, round - 1)) {
      const voximplantLoad = scenario.path.endsWith('/voximplant')
      const prefill = (rate: number, seconds: number): void => {
        if (voximplantLoad) voximplant.prefill(Math.ceil(rate * scenario.batch * seconds * 1.5))
      }
      const rates = new Map<ServerProcess, number>()
      for (const server of servers) {
        prefill(Math.max(0, ...rates.values(), lastRate.get(`${server.name}/${scenario.name}`) ?? 0), opts.warmup)
        const warm = await load(server, scenario, opts.warmup)
        rates.set(server, warm.requests.total / warm.duration)
      }
      const totals = new Map(servers.map(server => [server, { cpuMicros: 0, items: 0, elapsedMs: 0, requests: 0, seconds: 0, othersMicros: 0, onTheSpot: 0 }]))
      for (let slice = 0; slice < SLICES; slice++) {
        for (const server of rotate(servers, slice)) {
          const total = totals.get(server)!
          // The fastest of the scenario, twice: a warm-up held back by hashing on the spot guesses low.
          prefill(2 * Math.max(...rates.values(), ...servers.map(other => lastRate.get(`${other.name}/${scenario.name}`) ?? 0)), opts.duration / SLICES)
          const onTheSpot = voximplant.onTheSpot
          const others = othersLoad()
          const { result, usage } = await server.measure(scenario.batch, async () => await load(server, scenario, opts.duration / SLICES))
          const answered = result.requests.total * scenario.batch
          if (usage.items < answered) {
            throw new BenchError(`bench FAILED: ${server.name}, ${scenario.name}: the server answered ${answered} items with success but its handler ran for ${usage.items}: deduplicated or dropped`)
          }
          total.othersMicros += (others(usage.cpuMicros) ?? 0) * usage.elapsedMs * 10
          total.cpuMicros += usage.cpuMicros
          total.items += usage.items
          total.elapsedMs += usage.elapsedMs
          total.requests += result.requests.total
          total.seconds += result.duration
          total.onTheSpot += voximplant.onTheSpot - onTheSpot
        }
      }
      for (const server of servers) {
        const total = totals.get(server)!
        const reqPerSec = total.requests / total.seconds
        lastRate.set(`${server.name}/${scenario.name}`, reqPerSec)
        const out: Sample = {
          server: server.name,
          scenario: scenario.name,
          round,
          reqPerSec,
          itemsPerSec: reqPerSec * scenario.batch,
          p99Ms: NaN,
          cpuMicrosPerItem: total.cpuMicros / total.items,
          cpuPercent: total.cpuMicros / (total.elapsedMs * 10),
          othersPercent: total.othersMicros / (total.elapsedMs * 10),
          onTheSpot: total.onTheSpot
        }
        log(`  ${out.server.padEnd(22)} ${out.scenario.padEnd(8)} ${fmt(out.reqPerSec, 0).padStart(7)} req/s ${fmt(out.cpuMicrosPerItem)} µs/item  CPU ${fmt(out.cpuPercent, 0)}%, others ${fmt(out.othersPercent, 0)}%${out.onTheSpot > 0 ? `  (${out.onTheSpot} hashes on the spot)` : ''}`)
        samples.push(out)
      }
    }
  } finally {
    for (const server of servers) await server.stop()
  }
  return samples
}

/** --check: the capacity ratios, and whether each is above its floor. */
async function check (): Promise<void> {
  const started = Date.now()
  log(`bench --check: ${opts.servers.join(', ')} x ${opts.scenarios.map(s => s.name).join(', ')} x ${opts.rounds} rounds, ${opts.warmup} s warm-up + ${opts.duration} s each`)
  const samples: Sample[] = []
  for (let round = 1; round <= opts.rounds; round++) samples.push(...await checkRound(round, opts.rounds, opts.scenarios))
  let rows = capacityRatios(samples, opts.scenarios.map(s => s.name))
  // A busy machine left too few rounds judged: a few more, of those scenarios only, may still give a verdict.
  for (let round = opts.rounds + 1; round <= opts.rounds + EXTRA_ROUNDS; round++) {
    const short = opts.scenarios.filter(s => rows.some(r => r.scenario === s.name && r.passed === undefined))
    if (short.length === 0) break
    log(`bench --check: the rest of the machine took more than ${MAX_OTHERS_PERCENT}% of a core in too many rounds of ${short.map(s => s.name).join(', ')}: one more round`)
    samples.push(...await checkRound(round, opts.rounds + EXTRA_ROUNDS, short))
    rows = capacityRatios(samples, opts.scenarios.map(s => s.name))
  }
  const failed = rows.filter(r => r.passed === false)
  const unjudged = rows.filter(r => r.passed === undefined)
  const names = opts.scenarios.map(s => s.name)
  const before = opts.baseline === undefined
    ? []
    : ['', `### The same, for the plugin as built in ${opts.baseline} (${BASELINE}), in the same rounds`, '', checkTable(capacityRatios(samples, names, BASELINE)), '',
        `### Today's plugin over ${BASELINE} (above 1: today's does more with the same CPU)`, '', checkTable(capacityRatios(samples, names, 'plugin', [BASELINE]))]
  console.log([
    '## bench --check: the plugin\'s capacity (items per CPU-second of its server) over the hand-written servers\'', '',
    machine(), `- run: \`npm run bench -- ${opts.argv}\`: ${opts.rounds} rounds, ${opts.duration} s measured per run, ${fmt((Date.now() - started) / 1000, 0)} s in all`,
    `- a round is judged when the rest of the machine (other processes, steal) took at most ${MAX_OTHERS_PERCENT}% of a core in both servers' windows; a median needs ${MIN_JUDGED} judged rounds`, '',
    checkTable(rows), ...before, '',
    failed.length > 0
      ? `bench --check FAILED: ${failed.map(r => `${r.scenario} over ${r.against} ${fmt(r.median)} < ${fmt(FLOORS[r.against as keyof typeof FLOORS])}`).join('; ')}`
      : unjudged.length > 0
        ? `bench --check: NOT JUDGED for ${unjudged.map(r => `${r.scenario} over ${r.against}`).join(', ')}: the machine was too busy ` +
          `(other processes took more than ${MAX_OTHERS_PERCENT}% of a core in all but ${Math.min(...unjudged.map(r => r.perRound.length))} rounds), which says nothing of the plugin; the rest passed`
        : 'bench --check: passed'
  ].join('\n'))
  if (failed.length > 0) process.exitCode = 1
}

async function main (): Promise<void> {
  const started = Date.now()
  const mainRuns = opts.servers.length * opts.scenarios.length * opts.rounds
  const extraRuns = (opts.extras ? 2 * opts.rounds + 2 : 0) + (opts.telemetry ? TELEMETRY_SERVERS.length * opts.scenarios.length * opts.rounds : 0)
  const spawns = (opts.servers.length + (opts.extras ? 1 : 0) + (opts.telemetry ? TELEMETRY_SERVERS.length : 0)) * opts.rounds
  const estimate = (mainRuns + extraRuns) * (opts.warmup + opts.duration + RUN_OVERHEAD_S) + spawns * SPAWN_S
  log(`bench: ${opts.servers.length} servers x ${opts.scenarios.length} scenarios x ${opts.rounds} rounds = ${mainRuns} runs` +
    `${opts.extras ? ` + ${extraRuns} extra runs` : ''}, ${opts.warmup} s warm-up + ${opts.duration} s each: about ${estimate < 120 ? `${Math.ceil(estimate)} s` : `${Math.ceil(estimate / 60)} min`}`)

  const report: string[] = ['# Benchmark results', '', machine(), `- run: \`npm run bench${opts.argv === '' ? '' : ` -- ${opts.argv}`}\`: ` +
    `${opts.rounds} rounds, ${opts.warmup} s warm-up + ${opts.duration} s measured per run, ${opts.connections} connections, autocannon in the runner process`, '']

  if (opts.servers.length > 0 && opts.scenarios.length > 0) {
    const withRedis = opts.servers.includes('plugin-redis')
    const redis = withRedis ? await benchRedis() : undefined
    if (withRedis && redis === undefined) throw new BenchError(`bench FAILED: plugin-redis needs a Redis: no redis-server on PATH, and none at ${SHARED_REDIS_URL} (set REDIS_URL, or --only without plugin-redis)`)
    const prefix = `provider-callbacks-bench:${process.pid}-${Date.now()}:`
    // redis-server's CPU per event, over each plugin-redis window.
    const redisCpu = new Map<string, number[]>()
    let samples: Sample[]
    let counted: Map<string, { roundTrips: number, commands: number }> | undefined
    let inProcessResults: InProcess[] | undefined
    try {
      // A prefix per process and round: each starts the id sequence over.
      samples = await rounds(opts.servers.map(server => ({
        server,
        scenarios: opts.scenarios,
        ...(server === 'plugin-redis' ? { env: (round: number) => ({ BENCH_REDIS_PREFIX: `${prefix}${round}:`, REDIS_URL: redis!.url }) } : {})
      })), async (server, scenario, measure) => {
        if (server.name !== 'plugin-redis') return await measure()
        const before = await redisCpuSeconds(redis!.client)
        const measured = await measure()
        const perItem = (await redisCpuSeconds(redis!.client) - before) * 1e6 / measured.usage.items
        redisCpu.set(scenario.name, [...redisCpu.get(scenario.name) ?? [], perItem])
        return measured
      })
      if (redis !== undefined) {
        counted = await roundTripsPerRequest(redis.url, `${prefix}count:`)
        log('bench: redisStore against memoryStore in this process')
        inProcessResults = await inProcess(redis, `${prefix}in-process:`)
      }
    } finally {
      if (redis !== undefined) {
        const deleted = await deleteKeys(redis.client, prefix)
        log(`bench: deleted the ${deleted} keys the Redis store wrote`)
        redis.client.disconnect()
        await redis.stop()
      }
    }
    const scenarioNames = opts.scenarios.map(s => s.name)
    const summaries = summarise(samples, opts.servers, scenarioNames)
    const all = ratios(summaries, scenarioNames)
    report.push(`## Medians over ${opts.rounds} rounds`, '', resultsTable(summaries), '')
    if (redis !== undefined && counted !== undefined) report.push(...redisSection(summaries, scenarioNames, redisCpu, counted, redis.own ? 'a redis-server of the bench\'s own' : redis.url), ...inProcessSection(inProcessResults!))
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
  if (opts.redisOwnCpu) report.push(...await redisOwnCpuSection())
  if (opts.inbox) report.push(...await inboxSection())

  const wall = (Date.now() - started) / 1000
  report.push('## How it was measured', '',
    '- Each server is a process of its own (`node --import tsx --import bench/packaged.mjs bench/servers/<name>.ts`: the plugin as `npm run build` makes it, dist/esm, the rest of the server through tsx) on 127.0.0.1, a fresh one per round; autocannon loads it from the runner process. The machine\'s CPUs are shared by both.',
    '- plugin: Fastify with the plugin (default in-memory idempotency), a counting handler on `onAny`; plugin-redis: the same with `redisStore` over ioredis 5, configured as README says, against a redis-server the bench starts for itself (or REDIS_URL); its CPU per event is redis-server\'s own (INFO cpu, user + system) over the window, per event; plugin-no-idempotency: the same with `idempotency: false`; fastify-bare and express: the same checks written by hand (md5 + timingSafeEqual per item, EDIS\'s fields present), a counter per item; node-http: reads the body and answers the fixed success body.',
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
  await (opts.check ? check() : main())
} catch (error) {
  killAll()
  console.error(error instanceof BenchError ? error.message : error)
  process.exit(1)
}
