// EDIS Global's hooks, set and removed through its Management API (research/edis.md §1): an AUTH
// session gives each KVM its own api_host, signature and valid_until, which every hooks call carries
// in its form body. EDIS lists no hooks, so what set() returns is all there is to remove them with.
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { EdisCredentials } from '../edis/credentials.js'
import { InvalidOptionError } from '../errors.js'
import { callApi, ProvisionError, type ProvisionHttpOptions } from './http.js'

export interface EdisHooksOptions extends ProvisionHttpOptions {
  /** The client-area login (WHMCS) email. */
  email: string
  /** The client-area password. */
  password: string
  /** Where AUTH sessions are created. Default `'https://session.edisglobal.com'`. */
  sessionUrl?: string
  /** The base URL of a KVM's calls, from the `api_host` AUTH returned for it. Default `https://<api_host>`. */
  apiUrl?: (apiHost: string) => string
}

export interface EdisHookSettings {
  /** The KVM VPS id, e.g. `kvm_123456_789012`. */
  kvm: string
  /** Where EDIS calls, http or https: your route, e.g. `https://example.com/callbacks/edis`. */
  url: string
  /** The traffic usage in percent that fires the hook, e.g. 80. */
  trigger: number
  /** How EDIS calls. Default `'post'`. */
  method?: 'post' | 'get'
  /** The hook's `callback_user` / `callback_pw`: what the route's `edis.credentials` accepts. */
  credentials?: EdisCredentials
}

export interface EdisHook {
  kvm: string
  /** EDIS's id of the hook (a string on the wire, an integer to delete it with). */
  hookId: number
}

export interface EdisHooks {
  /** Creates a hook. EDIS cannot update one: to change it, set the new one and remove the old. */
  set: (settings: EdisHookSettings) => Promise<EdisHook>
  /** Deletes a hook. */
  remove: (hook: EdisHook) => Promise<void>
  /** Asks EDIS for its test call (`trigger_value=demo`) to `url` at once. `hookId` is EDIS's answer's, if it gave one. */
  demo: (settings: Omit<EdisHookSettings, 'trigger'>) => Promise<{ kvm: string, hookId: number | undefined }>
  /** The ids of the account's KVMs, from the AUTH session. */
  kvms: () => Promise<string[]>
}

const SessionSchema = Type.Object({
  api_host: Type.String({ minLength: 1 }),
  signature: Type.String({ minLength: 1 }),
  // An integer Unix time in the AUTH answer; other pages show an ISO date. Echoed back as it came.
  valid_until: Type.Union([Type.Number(), Type.String()])
})
type Session = Static<typeof SessionSchema>

// A session is renewed this long before its valid_until, for the clocks' difference and the call's time.
const RENEW_BEFORE = 60_000

const success = (answer: Record<string, unknown>): string | undefined =>
  answer.status === 'success' ? undefined : `answered status ${JSON.stringify(answer.status ?? null)}`

/** The milliseconds valid_until stands for; NaN when it reads as no time (a session then serves one use). */
function expiry (validUntil: number | string): number {
  if (typeof validUntil === 'number') return validUntil * 1000
  return /^\d+$/.test(validUntil) ? Number(validUntil) * 1000 : Date.parse(validUntil)
}

// Long for a reason: the returned methods share one session (its token, its renewal) held in this
// closure; each method is short.
export function edisHooks (options: EdisHooksOptions): EdisHooks {
  // Refused here, as the CLI refuses them: EDIS would answer an AUTH with no account with an error
  // of its own, after a call that carried nothing worth sending.
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('edisHooks needs options: { email, password }')
  for (const name of ['email', 'password'] as const) {
    const value: unknown = options[name]
    if (typeof value !== 'string' || value === '') {
      // Never the password itself: only what kind of value it is.
      throw new InvalidOptionError(`edisHooks ${name} must be a non-empty string, got ${value === '' ? 'an empty string' : typeof value}`)
    }
  }
  const sessionUrl = (options.sessionUrl ?? 'https://session.edisglobal.com').replace(/\/+$/, '')
  const apiUrl = options.apiUrl ?? ((apiHost: string) => `https://${apiHost}`)
  let cached: Promise<Map<string, Session>> | undefined

  async function authenticate (): Promise<Map<string, Session>> {
    const answer = await callApi({
      call: 'EDIS AUTH',
      url: `${sessionUrl}/kvm/v2/get/auth`,
      body: new URLSearchParams({ email: options.email, pw: options.password }),
      secrets: [options.password],
      failure: success
    }, options)
    // PHP sends an account without KVMs' empty map as [].
    const data = answer.data !== null && typeof answer.data === 'object' ? answer.data : {}
    return new Map(Object.entries(data).filter((entry): entry is [string, Session] => Value.Check(SessionSchema, entry[1])))
  }

  // One AUTH answers for every KVM of the account, and calls at once share it: the sessions known,
  // or new ones unless they replace `stale` and another call has already replaced it.
  function current (stale?: Promise<Map<string, Session>>): Promise<Map<string, Session>> {
    if (cached !== undefined && cached !== stale) return cached
    const pending = cached = authenticate()
    pending.catch(() => { if (cached === pending) cached = undefined })
    return pending
  }

  // A session is asked for again when the KVM's is about to end, or the KVM is not in it (one
  // created since). A session just created serves once, whatever its valid_until says.
  async function session (kvm: string): Promise<Session> {
    const fresh = cached === undefined
    const pending = current()
    let sessions = await pending
    let found = sessions.get(kvm)
    if (!fresh && (found === undefined || !(expiry(found.valid_until) - RENEW_BEFORE > Date.now()))) {
      sessions = await current(pending)
      found = sessions.get(kvm)
    }
    if (found === undefined) {
      const known = [...sessions.keys()]
      throw new ProvisionError(`EDIS AUTH: the account has no session for KVM ${kvm} (it has ${known.length === 0 ? 'none' : known.join(', ')})`, 'EDIS AUTH')
    }
    return found
  }

  async function hooksCall (path: 'set' | 'del', kvm: string, fields: Record<string, string>, secrets: string[]): Promise<Record<string, unknown>> {
    const { api_host: apiHost, signature, valid_until: validUntil } = await session(kvm)
    return await callApi({
      call: `EDIS hooks/${path} (${kvm})`,
      url: `${apiUrl(apiHost).replace(/\/+$/, '')}/kvm/v2/hooks/${path}`,
      body: new URLSearchParams({ signature, kvm_id: kvm, valid_until: String(validUntil), ...fields }),
      secrets: [signature, options.password, ...secrets],
      failure: success
    }, options)
  }

  async function create (settings: Omit<EdisHookSettings, 'trigger'>, trigger: string): Promise<number | undefined> {
    const fields: Record<string, string> = { callback_method: settings.method ?? 'post' }
    if (settings.credentials !== undefined) {
      fields.callback_user = settings.credentials.username
      fields.callback_pw = settings.credentials.password
    }
    Object.assign(fields, { type: 'traffic', trigger_value: trigger, callback_url: settings.url })
    const answer = await hooksCall('set', settings.kvm, fields, settings.credentials === undefined ? [] : [settings.credentials.password])
    // "123" in the docs; an integer is taken as well.
    const id = answer.hook_id
    return (typeof id === 'string' && /^\d{1,15}$/.test(id)) || (Number.isSafeInteger(id) && Number(id) >= 0) ? Number(id) : undefined
  }

  return {
    async set (settings) {
      if (!Number.isSafeInteger(settings.trigger) || settings.trigger < 0) throw new TypeError(`trigger must be a percentage (an integer), got ${String(settings.trigger)}`)
      const hookId = await create(settings, String(settings.trigger))
      if (hookId === undefined) {
        throw new ProvisionError(`EDIS hooks/set (${settings.kvm}): the answer has no hook_id, so the hook cannot be removed through the API`, `EDIS hooks/set (${settings.kvm})`)
      }
      return { kvm: settings.kvm, hookId }
    },
    async remove ({ kvm, hookId }) {
      await hooksCall('del', kvm, { id: String(hookId) }, [])
    },
    async demo (settings) {
      return { kvm: settings.kvm, hookId: await create(settings, 'demo') }
    },
    async kvms () {
      return [...(await current()).keys()]
    }
  }
}
