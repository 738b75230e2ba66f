// The plugin as an app would run it: Fastify, the plugin, one handler on onAny that counts.
import Fastify from 'fastify'
import providerCallbacks, { type ProviderCallbacksOptions } from '../../lib/index.js'
import { SECRET } from '../protocol.js'
import { countItems, serve } from './harness.js'

export async function servePlugin (idempotency?: ProviderCallbacksOptions['idempotency'], onClose?: () => Promise<void>, options: Partial<ProviderCallbacksOptions> = {}): Promise<void> {
  const app = Fastify({ logger: false })
  await app.register(providerCallbacks, {
    edis: {},
    voximplant: { secret: SECRET },
    ...(idempotency === undefined ? {} : { idempotency }),
    ...options
  })
  app.providerCallbacks.onAny(() => { countItems() })
  await app.listen({ host: '127.0.0.1', port: 0 })
  serve(app.server, async () => {
    await app.close()
    await onClose?.()
  })
}
