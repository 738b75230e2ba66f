// An app without an inbox loads neither bullmq nor ioredis: they are optional peers, which a host
// without an inbox does not install.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { TYPESCRIPT_NODE_ARGS } from './helpers.js'

// Each child process starts the TypeScript loader: seconds of CPU on a busy machine.
t.setTimeout(120_000)

const loaded = async (...args: string[]): Promise<{ status: number, optional: string[] }> => {
  const { stdout } = await promisify(execFile)(process.execPath, [...TYPESCRIPT_NODE_ARGS, 'test/fixtures/loaded-modules.ts', ...args])
  return JSON.parse(stdout.trim().split('\n').at(-1)!)
}

t.test('an app without an inbox, its callback delivered: no module of bullmq or ioredis loaded', async t => {
  t.same(await loaded(), { status: 200, optional: [] })
})

t.test('the control: the same process, importing them itself, is seen loading both', async t => {
  t.same(await loaded('control'), { status: 200, optional: ['bullmq', 'ioredis'] })
})
