// The plugin with an inbox (bullmqInbox over REDIS_URL, queue BENCH_INBOX_NAME): a request is
// answered once its events are stored. BENCH_WORKER: '0' (default) for an API-only replica
// (worker: false), or a concurrency for a worker in this process; BENCH_HANDLER_MS: how long its
// handler takes. The items counted are those answered 200: what the provider sees.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import providerCallbacks, { bullmqInbox } from '../../lib/index.js'
import { SECRET } from '../protocol.js'
import { countItems, serve } from './harness.js'

const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null })
connection.on('error', () => {})
const inbox = bullmqInbox({ connection, name: process.env.BENCH_INBOX_NAME ?? 'provider-callbacks-bench' })
const concurrency = Number(process.env.BENCH_WORKER ?? 0)
const handlerMs = Number(process.env.BENCH_HANDLER_MS ?? 0)
const app = Fastify({ logger: false })
await app.register(providerCallbacks, {
  edis: {},
  voximplant: { secret: SECRET },
  inbox,
  worker: concurrency === 0 ? false : { concurrency }
})
app.providerCallbacks.onAny(async () => { if (handlerMs > 0) await sleep(handlerMs) })
app.addHook('onResponse', async (request, reply) => {
  if (reply.statusCode !== 200) return
  const body = request.body as { callbacks?: unknown[] } | undefined
  countItems(Array.isArray(body?.callbacks) ? body.callbacks.length : 1)
})
await app.listen({ host: '127.0.0.1', port: 0 })
serve(app.server, async () => {
  await app.close()
  connection.disconnect()
})
