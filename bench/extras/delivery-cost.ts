// What the delivery of a batch's events costs in one process, per item, without HTTP: the plugin's
// deliveries().batchWithWindow as the routes call it, with a listener that does nothing, under
// - idempotency off: the handlers only;
// - a store that remembers nothing (claim: 'claimed', complete: true): the claim protocol's own work;
// - memoryStore: the default, remembering each key.
// The difference between the first two is what the guard (claim, run, fenced complete) adds; between
// the last two, what remembering a key adds. Both the built plugin (dist/esm, what users install) and
// the TypeScript as tsx runs it (esbuild's keepNames wraps every function made at run time in a
// naming call): the gap between the two is a cost the bench would measure and no user pays.
// By hand: npm run build && node --import tsx bench/extras/delivery-cost.ts
import { pathToFileURL } from 'node:url'

const ROUNDS = 7
const ITEMS_PER_ROUND = 300_000
const BATCHES = [1, 10, 100]

interface Modules {
  deliveries: typeof import('../../lib/delivery/deliveries.js').deliveries
  CallbackEvents: typeof import('../../lib/events.js').CallbackEvents
  memoryStore: typeof import('../../lib/idempotency/memory.js').memoryStore
}

async function modules (root: URL, extension: string): Promise<Modules> {
  const at = (path: string): string => new URL(`${path}${extension}`, root).href
  const [guard, events, memory] = await Promise.all([import(at('delivery/deliveries')), import(at('events')), import(at('idempotency/memory'))])
  return { deliveries: guard.deliveries, CallbackEvents: events.CallbackEvents, memoryStore: memory.memoryStore }
}

const silent = { error () {}, warn () {}, info () {}, debug () {}, trace () {}, fatal () {}, child () { return silent }, level: 'silent', silent () {} }
const request = { log: silent } as never
let nextId = 1

function batchOf (size: number): unknown[] {
  const batch = []
  for (let i = 0; i < size; i++) {
    batch.push({ name: 'min-balance', provider: 'voximplant', id: `voximplant:1234567:${nextId++}`, payload: {}, receivedAt: new Date(0), known: true })
  }
  return batch
}

/** Best of ROUNDS, in ns per item: the round the machine disturbed least. */
function measure (m: Modules, variant: 'off' | 'nothing' | 'memory', size: number): number {
  const events = new m.CallbackEvents(['min-balance'])
  events.onAny(() => {})
  const store = variant === 'memory'
    ? m.memoryStore()
    : { claim: () => 'claimed' as const, complete: () => true, release: () => {}, refresh: () => true }
  const settings = variant === 'off' ? undefined : { store, claimTtl: 30_000, failOpen: false }
  const deliver = m.deliveries(events, settings, silent as never).batchWithWindow(86_400_000)
  const batches = Math.ceil(ITEMS_PER_ROUND / size)
  let best = Infinity
  for (let round = 0; round < ROUNDS; round++) {
    const prepared = Array.from({ length: batches }, () => batchOf(size))
    const before = process.cpuUsage()
    for (const batch of prepared) {
      if (deliver(batch as never, request) !== 'delivered') throw new Error(`delivery-cost: a batch was not delivered (${variant})`)
    }
    const { user, system } = process.cpuUsage(before)
    best = Math.min(best, (user + system) * 1000 / (batches * size))
  }
  return best
}

const built = await modules(new URL('../../dist/esm/', import.meta.url), '.js')
const viaTsx = await modules(pathToFileURL(new URL('../../lib/', import.meta.url).pathname), '.ts')
const rows: string[] = ['| batch | build | idempotency off | store that remembers nothing | memoryStore | guard (nothing − off) | remembering (memory − nothing) |', '|---:|---|---:|---:|---:|---:|---:|']
for (const size of BATCHES) {
  for (const [build, m] of [['dist (tsc)', built], ['lib via tsx', viaTsx]] as const) {
    const off = measure(m, 'off', size)
    const nothing = measure(m, 'nothing', size)
    const memory = measure(m, 'memory', size)
    rows.push(`| ${size} | ${build} | ${off.toFixed(0)} | ${nothing.toFixed(0)} | ${memory.toFixed(0)} | ${(nothing - off).toFixed(0)} | ${(memory - nothing).toFixed(0)} |`)
  }
}
console.log(`ns of CPU per item, best of ${ROUNDS} rounds of ${ITEMS_PER_ROUND} items, Node.js ${process.version}\n\n${rows.join('\n')}`)
