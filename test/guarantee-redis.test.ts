// The delivery guarantee over a real Redis, with a replica cut off from it by a proxy that can
// drop every connection: a network partition, as a replica behind a flaky link sees it.
import { randomUUID } from 'node:crypto'
import { createServer, connect as connectSocket, type Server, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import providerCallbacks, { redisStore } from '../lib/index.js'
import { EDIS_BODIES, FORM } from './helpers.js'
import { cleanKeys, CLIENT_OPTIONS, REDIS_URL, redisAvailable } from './redis-helpers.js'

// About 5 s quiet, most of it the partition's own waits: room for a busy machine.
t.setTimeout(60_000)

const postEdis = (app: FastifyInstance) => app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })

/** A TCP proxy to Redis that can cut every connection through it, and refuse new ones, for a while. */
class Partition {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  cut = false
  constructor (target: URL) {
    this.#server = createServer(client => {
      if (this.cut) {
        client.destroy()
        return
      }
      const upstream = connectSocket(Number(target.port || 6379), target.hostname)
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket)
        socket.on('close', () => { this.#sockets.delete(socket) })
        socket.on('error', () => {})
      }
      client.pipe(upstream).pipe(client)
    })
  }

  async listen (): Promise<string> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', resolve))
    return `redis://127.0.0.1:${(this.#server.address() as { port: number }).port}`
  }

  sever (): void {
    this.cut = true
    for (const socket of this.#sockets) socket.destroy()
  }

  heal (): void {
    this.cut = false
  }

  async close (): Promise<void> {
    this.sever()
    await new Promise(resolve => this.#server.close(resolve))
  }
}

t.test('a replica cut off from Redis for less than half of claimTtl, across two refreshes, keeps its claim: the other replica never runs the event', async t => {
  if (!await redisAvailable(t)) return
  const partition = new Partition(new URL(REDIS_URL))
  const behindProxy = new Redis(await partition.listen(), CLIENT_OPTIONS)
  behindProxy.on('error', () => {})
  await behindProxy.connect()
  const direct = new Redis(REDIS_URL, CLIENT_OPTIONS)
  direct.on('error', () => {})
  await direct.connect()
  const prefix = cleanKeys(t, `guarantee-redis:${randomUUID()}:`)
  const claimTtl = 3000
  const replica = async (client: Redis): Promise<FastifyInstance> => {
    const app = Fastify()
    await app.register(providerCallbacks, { edis: {}, idempotency: { store: redisStore(client, { prefix }), claimTtl }, handlerTimeout: false })
    return app
  }
  const [cutOff, other] = await Promise.all([replica(behindProxy), replica(direct)])
  t.teardown(async () => {
    await Promise.all([cutOff.close(), other.close()])
    behindProxy.disconnect()
    direct.disconnect()
    await partition.close()
  })
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  const runs: string[] = []
  let aborted = false
  cutOff.providerCallbacks.on('traffic-threshold', async (_event, _request, { signal }) => {
    runs.push('cut off')
    signal.addEventListener('abort', () => { aborted = true })
    await released
  })
  other.providerCallbacks.on('traffic-threshold', () => { runs.push('other') })
  const first = postEdis(cutOff)
  while (runs.length === 0) await sleep(5)
  // Refreshes fall due every second from the claim: the link goes down just before the first and
  // comes back after the second, 1.4 s later, under half of claimTtl.
  await sleep(850)
  partition.sever()
  await sleep(1400)
  partition.heal()
  // Past the claim's first ttl, which only a refresh after the outage can have extended.
  await sleep(claimTtl - 850 - 1400 + 500)
  const meanwhile = await postEdis(other)
  t.equal(meanwhile.statusCode, 409, 'the other replica finds the event in flight')
  release()
  t.equal((await first).statusCode, 200)
  t.equal((await postEdis(other)).statusCode, 200, 'then done')
  t.same(runs, ['cut off'], 'it ran once, on the replica that was cut off')
  t.equal(aborted, false, 'its claim was never lost')
})
