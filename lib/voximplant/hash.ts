import { hash as oneShotHash, timingSafeEqual } from 'node:crypto'

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
 * case; every secret is tried, and the digests compared in constant time, so the time taken does
 * not tell which secret matched or how much of a guess was right.
 */
export function isSignedBy (secrets: readonly VoximplantSecret[], accountId: number, callbackId: number, hash: unknown): boolean {
  if (typeof hash !== 'string' || !HEX_MD5.test(hash)) return false
  const given = Buffer.from(hash, 'hex')
  let signed = false
  for (const secret of secrets) {
    // Hex, then bytes: on Node 20 the one-shot hash gives hex faster than it gives a Buffer.
    signed = timingSafeEqual(Buffer.from(voximplantHash(secret, accountId, callbackId), 'hex'), given) || signed
  }
  return signed
}
