// provider-callbacks inbox failed | retry | retry-failed, against an inbox on the real Redis.
import { once } from 'node:events'
import { randomUUID } from 'node:crypto'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import { main } from '../lib/cli/index.js'
import providerCallbacks from '../lib/index.js'
import { postBatch, signedItem, VOX } from './helpers.js'
import { counts, testInbox, until, workerConnection } from './inbox-helpers.js'
import { freePort, REDIS_URL, redisAvailable } from './redis-helpers.js'

t.setTimeout(120_000)

async function cli (argv: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, { stdout: { write: text => { stdout += text } }, stderr: { write: text => { stderr += text } }, env })
  return { code, stdout, stderr }
}

t.test('a wrong command line: exit 2, what is wrong, and the usage', async t => {
  for (const [argv, message] of [
    [['inbox'], /inbox what\?/],
    [['inbox', 'list'], /unknown inbox command 'list'/],
    [['inbox', 'retry'], /retry needs one EVENT_ID/],
    [['inbox', 'failed', 'x'], /failed takes no argument/],
    [['inbox', 'failed'], /missing --redis/],
    [['inbox', 'failed', '--redis', 'http://x'], /--redis must be a redis:\/\//],
    [['inbox', 'failed', '--redis', REDIS_URL, '--timeout', '0'], /--timeout must be a positive integer/],
    [['inbox', 'failed', '--nope'], /Unknown option '--nope'/]
  ] as const) {
    const run = await cli([...argv])
    t.equal(run.code, 2, argv.join(' '))
    t.match(run.stderr, message)
    t.match(run.stderr, /Usage: provider-callbacks inbox/)
  }
  const help = await cli(['inbox', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /^Usage: provider-callbacks inbox/)
  t.match((await cli(['--help'])).stdout, /inbox {13}an inbox's dead letters/)
})

t.test('a queue name BullMQ cannot take: exit 1, said', async t => {
  const run = await cli(['inbox', 'failed', '--redis', REDIS_URL, '--name', 'a:b'])
  t.equal(run.code, 1)
  t.match(run.stderr, /name must be a non-empty string without ':'/)
})

t.test('Redis refusing the connection: exit 1, ECONNREFUSED said at once (no retries until --timeout), the password in the URL never printed', async t => {
  const port = await freePort()
  for (const command of [['failed'], ['retry', 'voximplant:1:2'], ['retry-failed']]) {
    // Retrying until --timeout would end in its 'did not answer' instead: the refusal is the first try's.
    const run = await cli(['inbox', ...command, '--redis', `redis://:s3cret-pw@127.0.0.1:${port}`, '--timeout', '20000'])
    t.equal(run.code, 1, command.join(' '))
    t.equal(run.stderr, `provider-callbacks: 127.0.0.1:${port} (queue provider-callbacks): connect ECONNREFUSED 127.0.0.1:${port}\n`)
    t.equal(run.stdout, '')
    t.notMatch(run.stdout + run.stderr, /s3cret/)
  }
})

t.test('Redis connected but not answering: exit 1 once --timeout is over, said', async t => {
  const silent = createServer(() => {})
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => { silent.close() })
  const sockets: Socket[] = []
  silent.on('connection', socket => { sockets.push(socket) })
  t.teardown(() => { for (const socket of sockets) socket.destroy() })
  const { port } = silent.address() as AddressInfo
  const run = await cli(['inbox', 'failed', '--redis', `redis://:s3cret-pw@127.0.0.1:${port}`, '--timeout', '300'])
  t.equal(run.code, 1)
  t.equal(run.stderr, `provider-callbacks: 127.0.0.1:${port} (queue provider-callbacks): Redis did not answer within 300 ms\n`)
  t.notMatch(run.stdout + run.stderr, /s3cret/)
})

t.test('a queue that does not exist: exit 1, no such inbox, and nothing written to Redis', async t => {
  if (!await redisAvailable(t)) return
  const redis = workerConnection()
  const name = `test-typo-${randomUUID()}`
  const keys = async (): Promise<string[]> => await redis.keys(`*${name}*`)
  t.teardown(async () => {
    // What a failing run made, the shared Redis being never flushed.
    const made = await keys()
    if (made.length > 0) await redis.del(...made)
    redis.disconnect()
  })
  t.same(await keys(), [], 'none before')
  for (const command of [['failed'], ['retry', 'voximplant:1:2'], ['retry-failed']]) {
    const run = await cli(['inbox', ...command, '--redis', REDIS_URL, '--name', name])
    t.equal(run.code, 1, command.join(' '))
    t.equal(run.stderr, `provider-callbacks: ${new URL(REDIS_URL).host} (queue ${name}): no such inbox (no key bull:${name}:meta); check --name and --prefix\n`)
    t.equal(run.stdout, '')
    t.same(await keys(), [], `${command.join(' ')}: no key made`)
  }
})

t.test('with Redis: failed lists the dead letters, retry and retry-failed run them again', async t => {
  if (!await redisAvailable(t)) return
  const { inbox, name } = testInbox(t, { attempts: 1 })
  let fixed = false
  const succeeded: string[] = []
  const app = Fastify()
  await app.register(providerCallbacks, {
    voximplant: { secret: VOX },
    inbox,
    handlers: { 'min-balance': event => { if (!fixed) throw new Error('ledger down'); succeeded.push(event.id) } }
  })
  t.teardown(async () => { await app.close() })
  t.equal((await postBatch(app, [signedItem('min_balance', 1), signedItem('min_balance', 2)])).statusCode, 200)
  await until(async () => (await counts(inbox)).failed === 2, 'dead-lettered')
  const args = ['--redis', REDIS_URL, '--name', name]
  const id = (n: number): string => `voximplant:${VOX.accountId}:${n}`

  const failed = await cli(['inbox', 'failed', ...args])
  t.equal(failed.code, 0)
  t.equal(failed.stdout, `${id(1)}  min-balance  attempts 1  ledger down\n${id(2)}  min-balance  attempts 1  ledger down\n2 dead letters in 127.0.0.1:6379 (queue ${name})\n`.replace('127.0.0.1:6379', new URL(REDIS_URL).host))

  fixed = true
  const retry = await cli(['inbox', 'retry', id(1), ...args])
  t.equal(retry.code, 0)
  t.match(retry.stdout, `${id(1)}: back in`)
  await until(() => succeeded.length === 1, 'retried')
  t.match((await cli(['inbox', 'failed', ...args])).stdout, /^.*\n1 dead letter in/)
  const again = await cli(['inbox', 'retry', id(1), ...args])
  t.equal(again.code, 1)
  t.match(again.stderr, `${id(1)}: not a dead letter`)

  const other = testInbox(t)
  await other.inbox.queue()
  const elsewhere = await cli(['inbox', 'retry-failed', '--name', other.name], { REDIS_URL })
  t.equal(elsewhere.code, 0, 'REDIS_URL from the environment; another inbox, with no dead letters')
  t.match(elsewhere.stdout, new RegExp(`^0 dead letters back in .* \\(queue ${other.name}\\)`))
  t.match((await cli(['inbox', 'failed', '--name', other.name], { REDIS_URL })).stdout, /^0 dead letters in .*\n$/)
  const mine = await cli(['inbox', 'retry-failed', ...args])
  t.match(mine.stdout, /^1 dead letter back in/)
  await until(() => succeeded.length === 2, 'retried')
  t.same(succeeded, [id(1), id(2)])
  t.match((await cli(['inbox', 'failed', ...args])).stdout, /^0 dead letters in/)
})
