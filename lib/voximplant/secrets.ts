import type { FastifyRequest } from 'fastify'
import { InvalidOptionError } from '../errors.js'
import type { VoximplantSecret } from './hash.js'

/** A static secret; with `accountId`, it signs only that account's callbacks. */
export interface ScopedVoximplantSecret extends VoximplantSecret {
  accountId?: number | string | undefined
}

type OneOrMany<T> = T | readonly T[]
type Found = OneOrMany<VoximplantSecret> | null | undefined

/**
 * Looks up the secret(s) of an account, e.g. in a database: one, several during a rotation, or
 * none (null, undefined or []), which makes that account's callbacks a 401.
 */
export type VoximplantSecretLookup = (accountId: number, request: FastifyRequest) => Found | Promise<Found>

/** The secrets that may have signed an account's callbacks. */
export type SecretsOf = (accountId: number, request: FastifyRequest) => readonly VoximplantSecret[] | Promise<readonly VoximplantSecret[]>

/** The `secret` option, checked and indexed once: unscoped secrets serve every account. */
export function staticSecrets (secret: unknown): SecretsOf {
  const list = [secret].flat()
  if (list.length === 0) throw new InvalidOptionError('voximplant.secret must not be an empty array')
  const unscoped: VoximplantSecret[] = []
  const scoped = new Map<string, VoximplantSecret[]>()
  list.forEach((entry: unknown, i) => {
    const checked = checkSecret(entry, `voximplant.secret${Array.isArray(secret) ? `[${i}]` : ''}`)
    const { accountId } = entry as ScopedVoximplantSecret
    if (accountId === undefined) {
      unscoped.push(checked)
      return
    }
    if (!/^\d{1,15}$/.test(String(accountId))) {
      throw new InvalidOptionError(`voximplant.secret${Array.isArray(secret) ? `[${i}]` : ''}.accountId must be an account id (digits), got ${JSON.stringify(accountId)}`)
    }
    scoped.set(String(Number(accountId)), [...scoped.get(String(Number(accountId))) ?? [], checked])
  })
  const byAccount = new Map([...scoped].map(([id, own]) => [id, [...own, ...unscoped]]))
  return accountId => byAccount.get(String(accountId)) ?? unscoped
}

/** The `getSecret` option: what it returns is checked on every call, as it is the host's code. */
export function lookedUpSecrets (getSecret: VoximplantSecretLookup): SecretsOf {
  return async (accountId, request) => {
    const found = await getSecret(accountId, request)
    if (found === null || found === undefined) return []
    const list = [found].flat()
    list.forEach(entry => checkSecret(entry, 'a secret returned by voximplant.getSecret'))
    return list
  }
}

// Messages name the option, never the value: it may be a secret.
function checkSecret (entry: unknown, what: string): VoximplantSecret {
  const { apiKey, salt } = (typeof entry === 'object' && entry !== null ? entry : {}) as Partial<VoximplantSecret>
  if (typeof apiKey !== 'string' || apiKey === '') throw new InvalidOptionError(`${what}.apiKey must be a non-empty string`)
  if (salt !== undefined && typeof salt !== 'string') throw new InvalidOptionError(`${what}.salt must be a string when set`)
  return { apiKey, salt }
}
