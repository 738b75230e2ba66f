// Type tests of the inbox, in an app that does not declare `ProviderCallbacksTypes { inbox: true }`:
// its handlers keep their request, exactly; a worker's handlers have none. inbox-app/ is the app
// that declares it. Checked by `npm run test:types`.
import Fastify, { type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import providerCallbacks, {
  bullmqInbox, createInboxWorker, postgresInbox, type AnyProviderCallbackEvent, type DeadLetter, type DeadLettered, type HandlerRequest, type Inbox, type InboxHandler,
  type ProviderCallbackEvents, UnrecoverableError
} from '../../lib/index.js'
import { type Equal, expectType } from './assert.js'

const inbox = bullmqInbox({ connection: new Redis({ maxRetriesPerRequest: null }), name: 'x', attempts: 10, backoff: { type: 'exponential', delay: 1000, jitter: 0.5 } })
const app = Fastify()
await app.register(providerCallbacks, { voximplant: { secret: { apiKey: 'k' } }, inbox, worker: false })
await app.register(providerCallbacks, { voximplant: { secret: { apiKey: 'k' } }, inbox, worker: { concurrency: 8 } })
// @ts-expect-error: BullMQ's own option names: backoff is an object here
bullmqInbox({ connection: new Redis(), backoff: 'fast' })
// @ts-expect-error: a connection is needed
bullmqInbox({ name: 'x' })

// Without the declaration: the request is there, exactly as before; the inbox may be absent.
expectType<Equal<HandlerRequest, FastifyRequest>>()
app.providerCallbacks.on('min-balance', (event, request) => {
  expectType<Equal<typeof request, FastifyRequest>>()
  expectType<Equal<typeof event, ProviderCallbackEvents['min-balance']>>()
})
expectType<Equal<typeof app.providerCallbacks.inbox, Inbox | undefined>>()

// A worker's handlers: no request, and the types say so.
const worker = createInboxWorker(inbox, {
  concurrency: 16,
  handlers: {
    'min-balance': async (event, request, { signal }) => {
      expectType<Equal<typeof request, undefined>>()
      expectType<Equal<typeof event, ProviderCallbackEvents['min-balance']>>()
      expectType<Equal<typeof signal, AbortSignal>>()
      throw new UnrecoverableError('never retry this one')
    }
  },
  onAny: event => { expectType<Equal<typeof event, AnyProviderCallbackEvent>>() }
})
// @ts-expect-error: a handler that reads the request cannot run in a worker
createInboxWorker(inbox, { handlers: { 'min-balance': (_event, request: FastifyRequest) => { request.log.info('no') } } })
// @ts-expect-error: an unknown name
createInboxWorker(inbox, { handlers: { 'min-balanse': () => {} } })
worker.on('exhausted', (event, error, dead) => {
  expectType<Equal<typeof event, AnyProviderCallbackEvent>>()
  expectType<Equal<typeof error, Error>>()
  expectType<Equal<typeof dead, DeadLettered>>()
  expectType<Equal<DeadLettered['reason'], 'failed' | 'unrecoverable' | 'stalled'>>()
})
inbox.on('exhausted', (_event, _error, dead) => { expectType<Equal<typeof dead, DeadLettered>>() })
worker.on('failed', (_event, error) => { expectType<Equal<typeof error, Error>>() })
createInboxWorker(inbox, { maxStalledCount: 100 })
await worker.close()

expectType<Equal<Awaited<ReturnType<Inbox['failed']>>, DeadLetter[]>>()
expectType<Equal<DeadLetter, { event: AnyProviderCallbackEvent, attempts: number, error: string }>>()
expectType<Equal<Awaited<ReturnType<Inbox['retry']>>, boolean>>()
expectType<Equal<Awaited<ReturnType<Inbox['retryFailed']>>, number>>()
expectType<Equal<Awaited<ReturnType<Inbox['queue']>>['name'], string>>()
expectType<Equal<Parameters<InboxHandler>[1], undefined>>()

// The inbox on PostgreSQL: a pool config (not a pool: its pools are its own), the same Inbox and worker.
{
  const { Pool } = await import('pg')
  const onPostgres = postgresInbox({ connection: { connectionString: 'postgres://localhost/app', schema: 'callbacks', max: 20 }, name: 'x', transactional: true, claimTable: 'claims' })
  expectType<Equal<typeof onPostgres, Inbox>>()
  await app.register(providerCallbacks, { edis: {}, inbox: onPostgres, worker: false })
  createInboxWorker(onPostgres, { handlers: { 'traffic-threshold': async (_event, request) => { expectType<Equal<typeof request, undefined>>() } } })
  // @ts-expect-error: a pool config, not a pool
  postgresInbox({ connection: new Pool() })
  // @ts-expect-error: a connection is needed
  postgresInbox({ name: 'x' })
}
