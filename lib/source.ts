import { BlockList, isIP } from 'node:net'
import type { onRequestHookHandler } from 'fastify'
import { ForbiddenSourceError, InvalidOptionError } from './errors.js'

/** The addresses a provider's callbacks may come from (`<provider>.allowedIps`), as a test of `request.ip`. */
export function sourceCheck (allowed: unknown, option: string): (ip: string) => boolean {
  if (!Array.isArray(allowed) || allowed.length === 0) {
    throw new InvalidOptionError(`${option} must be a non-empty array of IP addresses or CIDR ranges; omit it to accept any source`)
  }
  const list = new BlockList()
  for (const entry of allowed) addEntry(list, entry, option)
  return ip => {
    const family = isIP(ip)
    // BlockList matches IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) against IPv4 rules too.
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6')
  }
}

/** The first check of a route that has `allowedIps`: a 403 before anything else is read. */
export function sourceHook (isAllowedSource: (ip: string) => boolean): onRequestHookHandler {
  return (request, _reply, done) => {
    if (!isAllowedSource(request.ip)) throw new ForbiddenSourceError()
    done()
  }
}

function addEntry (list: BlockList, entry: unknown, option: string): void {
  const [address = '', prefix, ...extra] = typeof entry === 'string' ? entry.trim().split('/') : []
  const family = isIP(address)
  const bits = family === 4 ? 32 : 128
  if (family === 0 || extra.length > 0) throw invalidEntry(entry, option)
  const type = family === 4 ? 'ipv4' : 'ipv6'
  if (prefix === undefined) {
    list.addAddress(address, type)
    return
  }
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits) throw invalidEntry(entry, option)
  list.addSubnet(address, Number(prefix), type)
}

function invalidEntry (entry: unknown, option: string): Error {
  return new InvalidOptionError(`${option}: ${JSON.stringify(entry)} is not an IP address or CIDR range (e.g. '149.154.154.251', '10.0.0.0/8', '2001:db8::/32')`)
}
