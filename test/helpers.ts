import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import providerCallbacks, { type AnyProviderCallbackEvent, type ProviderCallbacksOptions } from '../lib/index.js'

export const FORM = 'application/x-www-form-urlencoded'
export const SUCCESS_BODY = { status: 'success', message: 'Callback received successfully.' }

/** The research's three example bodies (research/edis.md §6), as they go on the wire. */
export const EDIS_BODIES = {
  canonical: 'kvm=kvm_123456_789012&details=Traffic+usage+reached+80%25&trigger_value=80',
  percentTwenty: 'kvm=kvm_234567_890123&details=Traffic%20usage%20reached%2095%25&trigger_value=95',
  unencoded: 'kvm=kvm_123456_789012&details=Traffic usage reached 100%&trigger_value=100'
}

export const CREDENTIALS = { username: 'hook', password: 'pa$$ word:with colon' }

export function basic (username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64')
}

/** An app with the plugin registered and every event it emits recorded, in order. */
export async function appWith (
  options: ProviderCallbacksOptions,
  serverOptions: FastifyServerOptions = {}
): Promise<{ app: FastifyInstance, events: AnyProviderCallbackEvent[] }> {
  const app = Fastify(serverOptions)
  const events: AnyProviderCallbackEvent[] = []
  await app.register(providerCallbacks, options)
  app.providerCallbacks.onAny(event => { events.push(event) })
  await app.ready()
  return { app, events }
}
