// The synchronous path (default in-memory idempotency) with a handler that takes
// BENCH_HANDLER_MS (default 50) ms: the request waits for it.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import providerCallbacks from '../../lib/index.js'
import { SECRET } from '../protocol.js'
import { countItems, serve } from './harness.js'

const handlerMs = Number(process.env.BENCH_HANDLER_MS ?? 50)
const app = Fastify({ logger: false })
await app.register(providerCallbacks, { edis: {}, voximplant: { secret: SECRET } })
app.providerCallbacks.onAny(async () => {
  await sleep(handlerMs)
  countItems()
})
await app.listen({ host: '127.0.0.1', port: 0 })
serve(app.server, async () => { await app.close() })
