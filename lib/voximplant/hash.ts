import { hash as oneShotHash } from 'node:crypto'

/** What Voximplant signs a callback with: the account's API key and the webhook's security salt. */
export interface VoximplantSecret {
  apiKey: string
  /** The "Security salt" of the webhook; absent or '' when none is set. */
  salt?: string | undefined
}

const HEX_MD5 = /^[0-9a-fA-F]{32}$/

/** md5(salt + account_id + api_key + callback_id) in lowercase hex, as Voximplant computes it. */
export function voximplantHash (secret: VoximplantSecret, accountId: number, callbackId: number): string {
  // The one-shot hash: for a string this short, half the time of a createHash object.
  return oneShotHash('md5', `${secret.salt ?? ''}${accountId}${secret.apiKey}${callbackId}`, 'hex')
}

/**
 * Whether `hash` signs the item under any of `secrets` (several during a rotation). Hex in either
 * case; every secret is tried, and every character of each compared, so the time taken does not
 * tell which secret matched or how much of a guess was right.
 */
export function isSignedBy (secrets: readonly VoximplantSecret[], accountId: number, callbackId: number, hash: unknown): boolean {
  if (typeof hash !== 'string' || !HEX_MD5.test(hash)) return false
  let signed = false
  for (const secret of secrets) signed = sameHex(hash, voximplantHash(secret, accountId, callbackId)) || signed
  return signed
}

// Two 32-digit hex strings, `expected` in lowercase, compared in constant time: every digit, no early
// exit. Without the two Buffers and the native call a timingSafeEqual needs, per item. `| 0x20`
// lowercases A-F and leaves digits as they are; the caller's pattern let nothing else through.
function sameHex (given: string, expected: string): boolean {
  let difference = 0
  for (let i = 0; i < 32; i++) difference |= (given.charCodeAt(i) | 0x20) ^ expected.charCodeAt(i)
  return difference === 0
}
