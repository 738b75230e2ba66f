// Heap used by memoryStore({ max: 100000 }) full of done keys, as the plugin leaves them:
// claim then complete, with keys `voximplant:1234567:<callback_id>`. Run by bench/run.ts with
// --expose-gc; the result goes back over IPC (or is printed when run by hand).
import { randomUUID } from 'node:crypto'
import { memoryStore } from '../../lib/index.js'

export interface HeapResult {
  /** Keys written. */
  inserted: number
  /** Keys the store held when measured. */
  held: number
  /** heapUsed after minus before, with a full GC before each reading, in bytes. */
  heapBytes: number
}

const MAX = 100_000
const CLAIM_TTL = 30_000
const WINDOW = 7 * 24 * 3600 * 1000
const owner = `${randomUUID()}:`
const firstId = Math.floor(Date.now() / 1000) * 1000

const gc = globalThis.gc
if (gc === undefined) throw new Error('bench/extras/heap.ts needs node --expose-gc')

type Store = ReturnType<typeof memoryStore>

async function fill (store: Store, count: number, onEach?: (i: number) => void): Promise<void> {
  for (let i = 0; i < count; i++) {
    const key = `voximplant:1234567:${firstId + i}`
    await store.claim(key, owner + i, CLAIM_TTL)
    await store.complete(key, owner + i, WINDOW)
    onEach?.(i + 1)
  }
}

function heapUsed (): number {
  gc!()
  gc!()
  return process.memoryUsage().heapUsed
}

// A store may forget old keys before it holds `max` of them; measure it at its fullest within
// MAX writes, which a first, unmeasured store finds.
let fullest = { inserted: 0, held: 0 }
const probe = memoryStore({ max: MAX })
await fill(probe, MAX, inserted => {
  if (probe.size >= fullest.held) fullest = { inserted, held: probe.size }
})

const before = heapUsed()
const store = memoryStore({ max: MAX })
await fill(store, fullest.inserted)
const after = heapUsed()
const result: HeapResult = { inserted: fullest.inserted, held: store.size, heapBytes: after - before }

if (process.send !== undefined) process.send(result)
else console.log(result)
