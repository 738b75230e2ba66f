import { hash, timingSafeEqual } from 'node:crypto'

export interface EdisCredentials {
  username: string
  password: string
}

type Digest = Buffer

// Comparing SHA-256 digests makes every comparison the same length, so neither the time taken
// nor an early length mismatch tells a caller how long the expected value is.
function digest (value: string): Digest {
  return hash('sha256', value, 'buffer')
}

/**
 * Returns a check of a username and password against every accepted pair (several during a
 * rotation). It always compares against all pairs, so the time taken does not say which matched.
 */
export function credentialsCheck (accepted: readonly EdisCredentials[]): (username: string, password: string) => boolean {
  const expected = accepted.map(c => ({ username: digest(c.username), password: digest(c.password) }))
  return (username, password) => {
    const user = digest(username)
    const pw = digest(password)
    let matched = false
    for (const pair of expected) {
      // Both halves are compared on every pair: no short circuit.
      const same = Number(timingSafeEqual(user, pair.username)) & Number(timingSafeEqual(pw, pair.password))
      matched = same === 1 || matched
    }
    return matched
  }
}

/** The username and password of an `Authorization: Basic …` header, or undefined if it is not one. */
export function parseBasicAuthorization (header: string): EdisCredentials | undefined {
  const match = /^basic[ \t]+([A-Za-z0-9+/=_-]+)[ \t]*$/i.exec(header)
  if (match === null) return undefined
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) return undefined
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}
