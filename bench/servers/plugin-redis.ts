// The plugin with redisStore over ioredis (REDIS_URL, default redis://127.0.0.1:6379), configured
// as docs/guarantee.md tells hosts to. Keys go under BENCH_REDIS_PREFIX, which the runner deletes
// afterwards; the windows are short so that nothing the runner misses lingers for days.
import { Redis } from 'ioredis'
import { redisStore } from '../../lib/index.js'
import { servePlugin } from './plugin-app.js'

const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 1000,
  lazyConnect: true
})
// A closing client's last write may fail (EPIPE): not a bench failure, and not an unhandled event.
client.on('error', () => {})
await client.connect()
const tenMinutes = 10 * 60 * 1000

await servePlugin({
  store: redisStore(client, { prefix: process.env.BENCH_REDIS_PREFIX ?? 'provider-callbacks-bench:' }),
  edisWindow: tenMinutes,
  voximplantWindow: tenMinutes
}, async () => { await client.quit() })
