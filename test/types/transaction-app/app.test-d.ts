// Type tests of an app with exactly-once effects that says so (`ProviderCallbacksTypes {
// transaction: PoolClient }`): its handlers' context has `tx`, typed as declared. A project of its
// own, since the declaration applies to the whole program. Checked by `npm run test:types`.
import Fastify from 'fastify'
import pg from 'pg'
import providerCallbacks, {
  postgresStore, postgresStoreSchema, type HandlerContext, type PostgresClientLike, type PostgresStore, type ProviderCallbackHandlers, type StoreTransaction, type TransactionalStore
} from '../../../lib/index.js'
import { type Equal, expectType } from '../assert.js'

declare module '../../../lib/index.js' {
  interface ProviderCallbacksTypes { transaction: pg.PoolClient }
}

const pool = new pg.Pool()
const store = postgresStore(pool, { table: 'events', schema: 'callbacks' })
expectType<Equal<typeof store, PostgresStore>>()
expectType<PostgresStore extends TransactionalStore<PostgresClientLike> ? true : false>()
expectType<Equal<Awaited<ReturnType<PostgresStore['begin']>>, StoreTransaction<PostgresClientLike>>>()
expectType<Equal<ReturnType<typeof postgresStoreSchema>, string>>()

const handlers: ProviderCallbackHandlers = {
  'min-balance': async (event, _request, { tx, signal }) => {
    expectType<Equal<typeof tx, pg.PoolClient>>()
    expectType<Equal<typeof signal, AbortSignal>>()
    await tx.query('INSERT INTO alerts (account, balance) VALUES ($1, $2)', [event.payload.account_id, event.payload.balance])
  }
}
const app = Fastify()
await app.register(providerCallbacks, { voximplant: { secret: { apiKey: 'k' } }, handlers, idempotency: { store, transactional: true } })
app.providerCallbacks.on('traffic-threshold', async (event, _request, context) => {
  expectType<Equal<typeof context.tx, pg.PoolClient>>()
  await context.tx.query('INSERT INTO traffic (kvm) VALUES ($1)', [event.payload.kvm])
})
app.providerCallbacks.onAny((_event, _request, context: HandlerContext) => {
  expectType<Equal<HandlerContext['tx'], pg.PoolClient>>()
  // @ts-expect-error: tx is the plugin's to commit, read-only
  context.tx = undefined
})
