import { InvalidOptionError } from './errors.js'
import { credentialsCheck, type EdisCredentials } from './edis/credentials.js'
import type { EdisRouteSettings } from './edis/route.js'
import { sourceCheck } from './edis/source.js'
import type { ProviderCallbackHandlers } from './events.js'

export interface EdisOptions {
  /** Route path under `prefix`. Default `'/edis'`. */
  path?: string
  /** `callback_user`/`callback_pw` of the hook; several during a rotation. */
  credentials?: EdisCredentials | EdisCredentials[]
  /** Addresses or CIDR ranges callbacks may come from, matched against `request.ip`. */
  allowedIps?: string[]
  /** Largest body accepted, in bytes. Default 16 KiB; EDIS sends about a hundred bytes. */
  bodyLimit?: number
}

export interface ProviderCallbacksOptions {
  /** Prefix of every route. Default `'/callbacks'`. */
  prefix?: string
  /** EDIS Global's traffic-threshold hook; `false` or omitted: no route. */
  edis?: EdisOptions | false
  /** Handlers by event name, the same as `app.providerCallbacks.on(name, handler)`. */
  handlers?: ProviderCallbackHandlers
}

export interface ResolvedOptions {
  prefix: string
  edis?: EdisRouteSettings & { unprotected: boolean }
}

export const DEFAULT_EDIS_BODY_LIMIT = 16 * 1024

/** Checks the options once, at registration, and turns them into what the routes run on. */
export function resolveOptions (options: ProviderCallbacksOptions): ResolvedOptions {
  const prefix = options.prefix ?? '/callbacks'
  if (typeof prefix !== 'string' || (prefix !== '' && !prefix.startsWith('/'))) {
    throw new InvalidOptionError(`prefix must be '' or a path starting with '/', got ${JSON.stringify(prefix)}`)
  }
  const edis = options.edis === undefined ? false : options.edis
  if (edis === false) {
    throw new InvalidOptionError('no provider is enabled: set edis: {} (and its options) to receive callbacks')
  }
  if (typeof edis !== 'object' || edis === null) throw new InvalidOptionError('edis must be an object or false')
  if (options.handlers !== undefined && (typeof options.handlers !== 'object' || options.handlers === null)) {
    throw new InvalidOptionError('handlers must be an object of event name -> function')
  }
  return { prefix, edis: resolveEdis(edis) }
}

function resolveEdis (edis: EdisOptions): NonNullable<ResolvedOptions['edis']> {
  const path = checkPath(edis.path ?? '/edis', 'edis.path')
  const bodyLimit = edis.bodyLimit ?? DEFAULT_EDIS_BODY_LIMIT
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1) {
    throw new InvalidOptionError(`edis.bodyLimit must be a positive integer (bytes), got ${JSON.stringify(bodyLimit)}`)
  }
  let areValidCredentials
  if (edis.credentials !== undefined) {
    const list = [edis.credentials].flat()
    if (list.length === 0) throw new InvalidOptionError('edis.credentials must not be an empty array; omit it to accept callbacks without credentials')
    list.forEach((c, i) => {
      for (const field of ['username', 'password'] as const) {
        if (typeof c?.[field] !== 'string' || c[field] === '') {
          throw new InvalidOptionError(`edis.credentials[${i}].${field} must be a non-empty string`)
        }
      }
    })
    areValidCredentials = credentialsCheck(list)
  }
  let isAllowedSource
  if (edis.allowedIps !== undefined) {
    if (!Array.isArray(edis.allowedIps) || edis.allowedIps.length === 0) {
      throw new InvalidOptionError('edis.allowedIps must be a non-empty array of IP addresses or CIDR ranges; omit it to accept any source')
    }
    isAllowedSource = sourceCheck(edis.allowedIps)
  }
  return {
    path,
    bodyLimit,
    areValidCredentials,
    isAllowedSource,
    unprotected: areValidCredentials === undefined && isAllowedSource === undefined
  }
}

function checkPath (path: unknown, name: string): string {
  if (typeof path !== 'string' || !/^\/./.test(path)) {
    throw new InvalidOptionError(`${name} must be a non-empty path starting with '/', got ${JSON.stringify(path)}`)
  }
  return path
}
