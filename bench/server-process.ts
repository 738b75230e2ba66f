// The runner's side of a server process: fork it (node --import tsx --import bench/packaged.mjs
// bench/servers/<name>.ts), learn its port, and bracket each measured load with start / stop to get
// its CPU usage.
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { FromServer, ToServer, WindowUsage } from './protocol.js'

/** A failure that ends the bench: printed as is, exit code 1. */
export class BenchError extends Error {}

const running = new Set<ChildProcess>()
// The plugin's modules from dist/esm, as users install them (see packaged.mjs); run.ts builds it first.
const PACKAGED = fileURLToPath(new URL('packaged.mjs', import.meta.url))

/** Kills every server still running (on a failure; they exit by themselves when the runner does). */
export function killAll (): void {
  for (const child of running) child.kill('SIGKILL')
}

export class ServerProcess {
  private waiting: { type: FromServer['type'], resolve: (message: FromServer) => void } | undefined
  private exited: Error | undefined
  private failed: ((error: Error) => void) | undefined

  private constructor (readonly name: string, private readonly child: ChildProcess, readonly port: number) {
    child.on('message', (message: FromServer) => {
      if (this.waiting?.type === message.type) {
        const { resolve } = this.waiting
        this.waiting = undefined
        resolve(message)
      }
    })
    child.on('exit', (code, signal) => {
      running.delete(child)
      this.exited = new BenchError(`bench: server ${name} exited (${signal ?? `code ${code}`}) while it was being measured`)
      this.failed?.(this.exited)
    })
  }

  /** Forks `bench/servers/<name>.ts` and waits for it to listen. */
  static async start (name: string, { execArgv = [], env = {} }: { execArgv?: string[], env?: Record<string, string> } = {}): Promise<ServerProcess> {
    const file = fileURLToPath(new URL(`servers/${name}.ts`, import.meta.url))
    const child = fork(file, [], {
      execArgv: [...execArgv, '--import', 'tsx', '--import', PACKAGED],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    running.add(child)
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new BenchError(`bench: server ${name} did not report its port within 30 s`)) }, 30_000)
      child.on('message', (message: FromServer) => {
        if (message.type !== 'ready') return
        clearTimeout(timer)
        resolve(message.port)
      })
      child.on('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new BenchError(`bench: server ${name} exited (${signal ?? `code ${code}`}) before it listened; see its output above`))
      })
    })
    return new ServerProcess(name, child, port)
  }

  private async ask<T extends FromServer['type']> (message: ToServer, type: T): Promise<Extract<FromServer, { type: T }>> {
    if (this.exited !== undefined) throw this.exited
    return await new Promise((resolve, reject) => {
      this.failed = reject
      this.waiting = { type, resolve: resolve as (message: FromServer) => void }
      this.child.send(message)
    })
  }

  /** Runs `load` inside a measured window; returns what it returned and the server's usage. */
  async measure<T> (itemsPerRequest: number, load: () => Promise<T>): Promise<{ result: T, usage: WindowUsage }> {
    await this.ask({ type: 'start', itemsPerRequest }, 'started')
    const result = await load()
    const { type: _type, ...usage } = await this.ask({ type: 'stop' }, 'stopped')
    return { result, usage }
  }

  /** Asks the server to exit, and kills it if it has not within 5 s. */
  async stop (): Promise<void> {
    if (this.exited !== undefined) return
    const gone = new Promise<void>(resolve => this.child.once('exit', () => { resolve() }))
    this.failed = undefined
    this.child.send({ type: 'exit' } satisfies ToServer)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
  }
}
