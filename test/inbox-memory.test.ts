// The inbox worker's memory over a long run, against the real Redis: what it read is garbage once
// fanned out, however much it read.
import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import t from 'tap'
import { createInboxWorker, type AnyProviderCallbackEvent } from '../lib/index.js'
import type { BullmqInbox } from '../lib/inbox/inbox.js'
import { VOX } from './helpers.js'
import { counts, fannedOut, testInbox, until } from './inbox-helpers.js'
import { redisAvailable } from './redis-helpers.js'

t.setTimeout(180_000)

// A full collection, on demand: V8's gc(), exposed to this process (tap's runner passes no flags).
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heapAfterGc = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const MiB = 1024 * 1024

t.test('a worker that fanned out 150 entries of 300 KB holds none of them: its heap after a collection is about what it was before', async t => {
  if (!await redisAvailable(t)) return
  const { inbox } = testInbox(t)
  const bullmq = inbox as BullmqInbox
  await bullmq.connect()
  const event = (id: number, note: string): AnyProviderCallbackEvent[] => [{
    name: 'min-balance', provider: 'voximplant', id: `voximplant:${VOX.accountId}:${id}`, payload: { note }, receivedAt: new Date(), known: true
  } as unknown as AnyProviderCallbackEvent]
  let runs = 0
  const worker = createInboxWorker(inbox, { onAny: () => { runs++ } })
  t.teardown(async () => { await worker.close() })
  // A first entry read, run and done: what the worker keeps whatever it reads (BullMQ's scripts,
  // its connections' buffers) is in the baseline.
  await bullmq.enqueue(event(0, ''))
  await until(async () => runs === 1 && (await counts(inbox)).completed === 1, 'the first event run')
  const before = heapAfterGc()

  const entries = 150
  const note = 'x'.repeat(300 * 1024)
  for (let id = 1; id <= entries; id++) await bullmq.enqueue(event(id, note))
  await until(async () => runs === entries + 1 && (await counts(inbox)).completed === entries + 1, 'every event run')
  await fannedOut(inbox)
  const grown = heapAfterGc() - before
  t.comment(`heap grown by ${(grown / MiB).toFixed(1)} MiB after ${entries} entries of 300 KB (${(entries * 300 / 1024).toFixed(0)} MiB read)`)
  // Far below the 44 MiB read: each entry kept would leave its JSON text at least.
  t.ok(grown < 15 * MiB, 'the heap has not grown by what was read')
})
