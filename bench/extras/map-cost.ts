// What remembering a key costs in V8, per event, beside what memoryStore does for it. Fresh keys
// `voximplant:1234567:<id>` as the plugin sees them, in steady state (the table full):
// - key only: the key string is made and dropped: the floor every variant shares;
// - Map set + delete: a plain Map kept at the store's size (each event sets its key and deletes
//   the key of `size` events ago): the least any store that remembers keys in a Map can do;
// - memoryStore: claim + complete per event, as the plugin calls them.
// Each is CPU time per event (process.cpuUsage over the loop) and the share of it that was GC.
// Run by bench/run.ts (IPC), or by hand: node --import tsx bench/extras/map-cost.ts
import { PerformanceObserver } from 'node:perf_hooks'
import { memoryStore } from '../../lib/index.js'

export interface MapCostResult {
  events: number
  /** Keys in the table in steady state. */
  size: number
  rows: Array<{ variant: string, nsPerEvent: number, gcShare: number }>
}

const EVENTS = 2_000_000
const MAX = 10_000 // memoryStore's default: it then holds 10,000 to 20,000 done keys
const firstId = Math.floor(Date.now() / 1000) * 1000
const owner = 'f3a1c2d4-0000-4000-8000-000000000000:'

let gcMs = 0
new PerformanceObserver(list => { for (const entry of list.getEntries()) gcMs += entry.duration }).observe({ entryTypes: ['gc'] })

// A sink, so that nothing a variant makes is optimised away.
let sink = 0

const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

// GC entries arrive asynchronously: a turn of the loop after the warm-up, and after the window.
async function measure (variant: string, run: (from: number, count: number) => void): Promise<{ variant: string, nsPerEvent: number, gcShare: number }> {
  run(0, 2 * MAX * 3) // warm up and fill
  await turn()
  gcMs = 0
  const before = process.cpuUsage()
  run(2 * MAX * 3, EVENTS)
  const used = process.cpuUsage(before)
  await turn()
  const micros = used.user + used.system
  return { variant, nsPerEvent: micros * 1000 / EVENTS, gcShare: gcMs * 1000 / micros }
}

async function main (): Promise<MapCostResult> {
  const rows = []
  rows.push(await measure('key only', (from, count) => {
    for (let i = from; i < from + count; i++) sink += `voximplant:1234567:${firstId + i}`.length
  }))

  // As many keys as memoryStore holds on average (1.5 x max).
  const size = MAX * 1.5
  const map = new Map<string, number>()
  const keys: string[] = new Array(size)
  rows.push(await measure('Map set + delete', (from, count) => {
    for (let i = from; i < from + count; i++) {
      const key = `voximplant:1234567:${firstId + i}`
      map.set(key, i)
      const slot = i % size
      const old = keys[slot]
      if (old !== undefined) map.delete(old)
      keys[slot] = key
    }
    sink += map.size
  }))

  const store = memoryStore({ max: MAX })
  rows.push(await measure('memoryStore claim + complete', (from, count) => {
    for (let i = from; i < from + count; i++) {
      const key = `voximplant:1234567:${firstId + i}`
      // The claim's own owner: complete records only over it (a fenced store).
      const attempt = owner + i
      if (store.claim(key, attempt, 30_000) === 'claimed' && !store.complete(key, attempt, 604_800_000)) throw new Error('memoryStore refused its own claim\'s complete')
    }
    sink += store.size
  }))
  return { events: EVENTS, size, rows }
}

const result = await main()
if (sink === -1) console.log('unreachable')
if (process.send !== undefined) process.send(result)
else console.log(JSON.stringify(result, null, 2))
