// The delivery guarantee, case by case: each test builds one way an event could run twice or be
// lost, and checks that it does not (README: "Delivery guarantee").
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import providerCallbacks, { memoryStore, type IdempotencyStore, type ProviderCallbacksOptions } from '../lib/index.js'
import { EDIS_BODIES, FORM } from './helpers.js'

const EDIS_ID = 'edis:kvm_123456_789012:80'

async function appWithStore (store: IdempotencyStore, options: Partial<ProviderCallbacksOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(providerCallbacks, { edis: {}, ...options, idempotency: { store, ...options.idempotency as object } })
  await app.ready()
  return app
}
const postEdis = (app: FastifyInstance) => app.inject({ method: 'POST', url: '/callbacks/edis', headers: { 'content-type': FORM }, payload: EDIS_BODIES.canonical })

/** A promise and the function that settles it, for steps a test takes in an order of its own. */
function gate (): { opened: Promise<void>, open: () => void } {
  let open!: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  return { opened, open }
}

t.test('a handler removed with off() while the claim is on its way: nothing ran, so nothing is recorded as done', async t => {
  const memory = memoryStore()
  const claimSent = gate()
  const claimMayAnswer = gate()
  const store: IdempotencyStore = {
    ...memory,
    claim: async (key, owner, ttl) => {
      claimSent.open()
      await claimMayAnswer.opened
      return memory.claim(key, owner, ttl)
    }
  }
  const app = await appWithStore(store)
  t.teardown(() => app.close())
  const runs: string[] = []
  const handler = (event: { id: string }): void => { runs.push(event.id) }
  app.providerCallbacks.on('traffic-threshold', handler)
  const answer = postEdis(app)
  await claimSent.opened
  app.providerCallbacks.off('traffic-threshold', handler)
  claimMayAnswer.open()
  t.equal((await answer).statusCode, 200, 'acknowledged, as an event nobody listens to is')
  t.same(runs, [])
  t.equal(memory.claim(EDIS_ID, 'probe', 1000), 'claimed', 'the claim was released, not recorded as done')
  memory.release(EDIS_ID, 'probe')
  app.providerCallbacks.on('traffic-threshold', handler)
  t.equal((await postEdis(app)).statusCode, 200)
  t.same(runs, [EDIS_ID], 'a handler added later gets the redelivery')
})

t.test('a handler whose answer has a throwing `then` getter failed: a 500 HANDLER_FAILED, and its claim is released', async t => {
  const store = memoryStore()
  const app = await appWithStore(store)
  t.teardown(() => app.close())
  let hostile = true
  const runs: string[] = []
  app.providerCallbacks.on('traffic-threshold', event => {
    runs.push(event.id)
    if (!hostile) return
    // A value whose `then` throws when looked at: neither a promise nor a plain value.
    return Object.defineProperty({}, 'then', { get () { throw new Error('then getter') } }) as never
  })
  const first = await postEdis(app)
  t.equal(first.statusCode, 500)
  t.equal(first.json().code, 'FST_PROVIDER_CALLBACKS_HANDLER_FAILED')
  hostile = false
  t.equal((await postEdis(app)).statusCode, 200, 'the redelivery is not blocked by a leaked claim')
  t.same(runs, [EDIS_ID, EDIS_ID])
})
