// The server side of the bench protocol: a server process listens on 127.0.0.1 (port 0), tells
// the runner its port, and measures its own CPU time over the windows the runner asks for.
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FromServer, ToServer } from '../protocol.js'

let items = 0
let itemsPerRequest = 1

/** A handler processed `n` items (callbacks). */
export function countItems (n = 1): void {
  items += n
}

/** For a server that does not parse bodies: one request is the window's items per request. */
export function countRequest (): void {
  items += itemsPerRequest
}

function send (message: FromServer): void {
  process.send!(message)
}

/** A node:http server for `listener` (Express, a bare handler), listening on 127.0.0.1, port 0. */
export async function listen (listener: RequestListener): Promise<Server> {
  const server = createServer(listener)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  return server
}

/**
 * Hands a listening server to the runner: reports its port, then answers the runner's start /
 * stop / exit until told to exit (or until the runner goes away).
 */
export function serve (server: Server, close: () => Promise<void> = async () => { server.close() }): void {
  if (process.send === undefined) {
    console.error('This is a bench server: npm run bench starts it, and talks to it over IPC.')
    process.exit(2)
  }
  let cpu = process.cpuUsage()
  let since = process.hrtime.bigint()
  process.on('message', (message: ToServer) => {
    switch (message.type) {
      case 'start':
        items = 0
        itemsPerRequest = message.itemsPerRequest
        since = process.hrtime.bigint()
        cpu = process.cpuUsage()
        send({ type: 'started' })
        break
      case 'stop': {
        const used = process.cpuUsage(cpu)
        const elapsedMs = Number(process.hrtime.bigint() - since) / 1e6
        const { rss, heapUsed } = process.memoryUsage()
        send({ type: 'stopped', cpuMicros: used.user + used.system, items, elapsedMs, rss, heapUsed })
        break
      }
      case 'exit':
        close().finally(() => process.exit(0))
        break
    }
  })
  // The runner died or closed the channel: nothing will stop this process otherwise.
  process.on('disconnect', () => process.exit(0))
  send({ type: 'ready', port: (server.address() as AddressInfo).port })
}
