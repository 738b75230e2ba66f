// Voximplant's account webhook (callback_url and callback_salt), read and set through the
// Management API as the official SDKs call it: POST <apiUrl>/platform_api, a multipart form with
// cmd=<Method>, and a fresh RS256 JWT of the service account's key in every request.
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { callApi, type ProvisionHttpOptions } from './http.js'

/** A service account's key file, as the control panel downloads it (Settings → Service accounts). */
export const VoximplantKeyFileSchema = Type.Object({
  account_id: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^\\d{1,15}$' })]),
  key_id: Type.String({ minLength: 1 }),
  private_key: Type.String({ minLength: 1 }),
  account_email: Type.Optional(Type.String())
})
export type VoximplantKeyFile = Static<typeof VoximplantKeyFileSchema>

export interface VoximplantWebhookOptions extends ProvisionHttpOptions {
  /** The key file's parsed JSON, or the path to it. */
  credentials: VoximplantKeyFile | string
  /** Default `'https://api.voximplant.com'`. */
  apiUrl?: string
}

export interface VoximplantWebhookState {
  accountId: number
  /** The URL Voximplant posts callbacks to; undefined when none is set. */
  callbackUrl: string | undefined
  /** Whether a security salt is set (never the salt itself). */
  saltSet: boolean
}

export interface VoximplantWebhook {
  show: () => Promise<VoximplantWebhookState>
  /**
   * Sets the callback URL and salt. `salt` undefined: a new one is generated; `false`: the salt is
   * left as it is. Resolves to the salt set, for the route's `voximplant.secret.salt`.
   */
  set: (settings: { url: string, salt?: string | false }) => Promise<{ salt: string | undefined }>
}

// "an arbitrary text string of up to 40 characters" in the guide, "under 40" in SetAccountInfo.
const VOXIMPLANT_SALT_MAX = 40
// The SDKs' tokens live 64 s: one per request, so none outlives its call.
const TOKEN_LIFETIME = 64

/** A salt of 32 URL-safe characters (192 random bits): under either reading of the limit. */
function newVoximplantSalt (): string {
  return randomBytes(24).toString('base64url')
}

function keyFile (credentials: VoximplantKeyFile | string): VoximplantKeyFile {
  let value: unknown = credentials
  if (typeof credentials === 'string') {
    try {
      value = JSON.parse(readFileSync(credentials, 'utf8'))
    } catch (error) {
      // Only the reason: a JSON error quotes the file's text, which holds the private key.
      const reason = (error as NodeJS.ErrnoException).code ?? 'not JSON'
      throw new Error(`cannot read the Voximplant key file ${credentials}: ${reason}`)
    }
  }
  if (!Value.Check(VoximplantKeyFileSchema, value)) {
    throw new Error(`the Voximplant credentials are not a service-account key file (account_id, key_id, private_key)${typeof credentials === 'string' ? `: ${credentials}` : ''}`)
  }
  return value
}

const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

function jwt (accountId: number, keyId: string, key: KeyObject, now = Date.now()): string {
  const iat = Math.floor(now / 1000)
  const unsigned = `${base64url({ alg: 'RS256', typ: 'JWT', kid: keyId })}.${base64url({ iss: accountId, iat, exp: iat + TOKEN_LIFETIME })}`
  return `${unsigned}.${sign('sha256', Buffer.from(unsigned), key).toString('base64url')}`
}

// Success is { result: ... } (1 for a Set, an object for a Get); a failure { error: { code, msg } }.
function failure (answer: Record<string, unknown>): string | undefined {
  if (answer.error !== undefined) {
    const { code, msg } = (answer.error ?? {}) as { code?: unknown, msg?: unknown }
    return `answered error ${String(code)}${typeof msg === 'string' ? ` (${msg})` : ''}`
  }
  if (answer.result === undefined || answer.result === null || answer.result === 0 || answer.result === false) {
    return `answered result ${JSON.stringify(answer.result ?? null)}`
  }
  return undefined
}

export function voximplantWebhook (options: VoximplantWebhookOptions): VoximplantWebhook {
  const file = keyFile(options.credentials)
  const accountId = Number(file.account_id)
  let key: KeyObject
  try {
    key = createPrivateKey(file.private_key)
  } catch {
    throw new Error('the Voximplant key file\'s private_key is not a private key in PEM')
  }
  const url = `${(options.apiUrl ?? 'https://api.voximplant.com').replace(/\/+$/, '')}/platform_api`

  async function call (cmd: string, fields: Record<string, string>, secrets: string[]): Promise<Record<string, unknown>> {
    const form = new FormData()
    form.set('cmd', cmd)
    for (const [name, value] of Object.entries(fields)) form.set(name, value)
    const token = jwt(accountId, file.key_id, key)
    return await callApi({
      call: `Voximplant ${cmd}`,
      url,
      body: form,
      headers: { Authorization: `Bearer ${token}` },
      secrets: [token, file.private_key, ...secrets],
      failure
    }, options)
  }

  return {
    async show () {
      const { result } = await call('GetAccountInfo', {}, [])
      const info = (typeof result === 'object' ? result : {}) as Record<string, unknown>
      const callbackUrl = typeof info.callback_url === 'string' && info.callback_url !== '' ? info.callback_url : undefined
      return { accountId, callbackUrl, saltSet: typeof info.callback_salt === 'string' && info.callback_salt !== '' }
    },
    async set (settings) {
      if (!URL.canParse(settings.url) || !/^https?:$/.test(new URL(settings.url).protocol)) {
        throw new TypeError(`url must be an http or https URL, got '${settings.url}'`)
      }
      const salt = settings.salt === undefined ? newVoximplantSalt() : settings.salt
      if (salt !== false && (salt.length === 0 || salt.length > VOXIMPLANT_SALT_MAX)) {
        throw new TypeError(`the salt must have 1 to ${VOXIMPLANT_SALT_MAX} characters, it has ${salt.length}`)
      }
      const fields: Record<string, string> = { callback_url: settings.url }
      if (salt !== false) fields.callback_salt = salt
      await call('SetAccountInfo', fields, salt === false ? [] : [salt])
      return { salt: salt === false ? undefined : salt }
    }
  }
}
