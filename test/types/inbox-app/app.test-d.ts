// Type tests of an app whose handlers run from an inbox and which says so: its handlers' request
// is `undefined`, as at run time, and its `inbox` is there. A project of its own, since the
// declaration applies to the whole program. Checked by `npm run test:types`.
import Fastify, { type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import providerCallbacks, { bullmqInbox, type HandlerRequest, type Inbox, type ProviderCallbackHandlers } from '../../../lib/index.js'
import { type Equal, expectType } from '../assert.js'

declare module '../../../lib/index.js' {
  interface ProviderCallbacksTypes { inbox: true }
}

const inbox = bullmqInbox({ connection: new Redis({ maxRetriesPerRequest: null }) })
const app = Fastify()
const handlers: ProviderCallbackHandlers = {
  'traffic-threshold': (event, request) => {
    expectType<Equal<typeof request, undefined>>()
    expectType<Equal<typeof event.payload.kvm, string>>()
  }
}
await app.register(providerCallbacks, { edis: {}, inbox, handlers })
expectType<Equal<HandlerRequest, undefined>>()
app.providerCallbacks.on('min-balance', (_event, request) => { expectType<Equal<typeof request, undefined>>() })
// @ts-expect-error: there is no request to read
app.providerCallbacks.on('min-balance', (_event, request: FastifyRequest) => { request.log.info('no') })
expectType<Equal<typeof app.providerCallbacks.inbox, Inbox>>()
await app.providerCallbacks.inbox.retryFailed()
