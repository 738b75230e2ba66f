// Redis errors in the logs, against a real redis-server out of memory (maxmemory + noeviction, so
// it answers every write with an OOM error): ioredis attaches the failed command to its errors, a
// request's signed items and SMS text or a BullMQ script among its args; no log line may carry them.
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import t, { type Test } from 'tap'
import { bullmqInbox, createInboxWorker, redisStore } from '../lib/index.js'
import { postBatch, signedItem, voximplantApp } from './helpers.js'
import { received, until, workerConnection } from './inbox-helpers.js'
import { connect, freePort, OwnRedis, redisAvailable } from './redis-helpers.js'

t.setTimeout(120_000)

const SMS = 'the one-time code is 493-118, do not share it'
const smsItem = (id: number): Record<string, unknown> => signedItem('sms_inbound', id, { sms_inbound: { sms_inbound: { sms_body: SMS, source_number: '15550001', destination_number: '15550002' } } })

/** Log lines as pino writes them (JSON), collected. */
function collect (): { lines: string[], logger: FastifyBaseLogger } {
  const lines: string[] = []
  // Fastify's own logger (pino), as an app's is.
  const { log } = Fastify({ logger: { level: 'trace', stream: { write: (line: string) => { lines.push(line) } } } })
  return { lines, logger: log }
}

/** Nothing the failed command carried: no item's hash, no SMS text, no Lua of BullMQ's or the store's. */
function assertClean (t: Test, lines: string[], hashes: string[]): void {
  for (const line of lines) {
    for (const hash of hashes) t.notOk(line.includes(hash), 'no item hash in a log line')
    t.notOk(line.includes(SMS), 'no SMS text in a log line')
    t.notOk(/redis\.call|KEYS\[|ARGV\[/.test(line), 'no script in a log line')
    t.notOk(line.includes('"args"') || line.includes('"command"'), 'no command or its args in a log line')
  }
}

t.test('with Redis', async t => {
  if (!await redisAvailable(t)) return
  const redis = new OwnRedis(await freePort())
  await redis.start()
  t.teardown(async () => { await redis.destroy() })
  const admin = await connect(redis.url)
  t.teardown(() => { admin.disconnect() })
  // Every write refused from now on, reads still answered.
  const outOfMemory = async (): Promise<void> => {
    await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
    await admin.call('CONFIG', 'SET', 'maxmemory', '1')
  }
  const roomAgain = async (): Promise<void> => { await admin.call('CONFIG', 'SET', 'maxmemory', '0') }
  t.teardown(roomAgain)

  t.test('the inbox refused by Redis (OOM): a 503, and its log line says what Redis answered, with no item, text or command', async t => {
    const { lines, logger } = collect()
    const connection = workerConnection(redis.url)
    t.teardown(() => { connection.disconnect() })
    const inbox = bullmqInbox({ connection, name: `test-${randomUUID()}` })
    const api = await voximplantApp(t, { inbox, worker: false }, { loggerInstance: logger })
    await outOfMemory()
    t.teardown(roomAgain)
    const items = [smsItem(1), smsItem(2)]
    const answer = await postBatch(api, items)
    t.equal(answer.statusCode, 503)
    t.equal(answer.json().code, 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE')
    const failed = lines.filter(line => line.includes('the inbox cannot store the events'))
    t.equal(failed.length, 1, 'the failure logged')
    t.match(failed[0], /OOM command not allowed/, 'with what Redis answered')
    t.notMatch(failed[0], /unreachable/, 'Redis answered: it is not said to be unreachable')
    t.match(JSON.parse(failed[0]!).err, { type: 'ReplyError', message: /^OOM command not allowed/ }, 'the error named as it is')
    assertClean(t, lines, items.map(item => item.hash as string))
  })

  t.test('a worker whose fan-out Redis refuses (OOM): logged with no job data nor script, and the entry stays to be fanned out', async t => {
    const { lines, logger } = collect()
    const connection = workerConnection(redis.url)
    t.teardown(() => { connection.disconnect() })
    const inbox = bullmqInbox({ connection, name: `test-${randomUUID()}` })
    t.teardown(async () => { await inbox.close() })
    const api = await voximplantApp(t, { inbox, worker: false }, { loggerInstance: logger })
    const items = [smsItem(3)]
    t.equal((await postBatch(api, items)).statusCode, 200)
    await inbox.queue()
    await outOfMemory()
    t.teardown(roomAgain)
    const worker = createInboxWorker(inbox, { handlers: { 'sms-inbound': () => {} }, logger, stalledInterval: 200, lockDuration: 200 })
    t.teardown(async () => { await worker.close() })
    await until(() => lines.some(line => line.includes('OOM command not allowed')), 'the refusal logged')
    t.same((await received(inbox)).length, 1, 'the entry is still there, to be fanned out once Redis takes writes')
    assertClean(t, lines, items.map(item => item.hash as string))
  })

  t.test('redisStore refused by Redis (OOM): a 503, logged with no script and no item', async t => {
    const { lines, logger } = collect()
    const client = await connect(redis.url)
    t.teardown(() => { client.disconnect() })
    const api = await voximplantApp(t, { idempotency: { store: redisStore(client, { prefix: `test-${randomUUID()}:` }) }, handlers: { 'sms-inbound': () => {} } }, { loggerInstance: logger })
    await outOfMemory()
    t.teardown(roomAgain)
    const items = [smsItem(4)]
    t.equal((await postBatch(api, items)).statusCode, 503)
    t.ok(lines.some(line => line.includes('OOM command not allowed')), 'what Redis answered is logged')
    assertClean(t, lines, items.map(item => item.hash as string))
  })
})
