// Fake EDIS and Voximplant Management APIs on 127.0.0.1, answering the documented bodies
// (research/edis.md §1, research/ingest.md) and recording every request as it arrived, so that the
// tests assert the exact requests the clients send and the state they leave on the provider's side.
import { once } from 'node:events'
import { randomBytes, verify, type KeyObject } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

/** An answer a test scripts for the next request to a path, instead of the fake's own. */
export interface Scripted { status?: number, body?: string, contentType?: string, hang?: boolean }

interface Recorded { method: string, path: string, headers: IncomingMessage['headers'], body: Buffer }

class FakeServer {
  readonly requests: Recorded[] = []
  readonly scripted = new Map<string, Scripted[]>()
  base = ''
  private readonly server: Server

  constructor (handle: (request: Recorded) => Promise<{ status: number, body: unknown }> | { status: number, body: unknown }) {
    this.server = createServer((request: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      request.on('end', () => {
        const recorded = { method: String(request.method), path: String(request.url), headers: request.headers, body: Buffer.concat(chunks) }
        this.requests.push(recorded)
        const script = this.scripted.get(recorded.path)?.shift()
        if (script?.hang === true) return
        if (script !== undefined) {
          response.writeHead(script.status ?? 200, { 'content-type': script.contentType ?? 'application/json' }).end(script.body ?? '')
          return
        }
        Promise.resolve(handle(recorded)).then(({ status, body }) => {
          response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
        }, (error: unknown) => { response.writeHead(500).end(String(error)) })
      })
    })
  }

  async start (t: Test): Promise<this> {
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    t.teardown(() => {
      this.server.closeAllConnections()
      this.server.close()
    })
    return this
  }

  /** The next answer to `path` (as the request line has it) is `script`. */
  answer (path: string, script: Scripted): void {
    this.scripted.set(path, [...(this.scripted.get(path) ?? []), script])
  }

  to (path: string): Recorded[] {
    return this.requests.filter(request => request.path === path)
  }
}

export interface FakeHook { id: number, kvm: string, fields: Record<string, string> }

/**
 * EDIS: AUTH at /kvm/v2/get/auth; each KVM's api_host is `<n>.edisglobal.com`, served here under
 * /host/<api_host>/ (the clients' apiUrl maps it), so a call to another KVM's host is seen.
 */
export class FakeEdis extends FakeServer {
  readonly hooks = new Map<number, FakeHook>()
  /** Live sessions: signature → its KVM and valid_until (seconds). */
  readonly sessions = new Map<string, { kvm: string, validUntil: number | string }>()
  /** How long a session lasts, in seconds; or a valid_until the AUTH answer gives as it is. */
  ttl = 3600
  validUntil: ((now: number) => number | string) | undefined
  /** hooks/set answers hook_id as a string (the docs), or an integer, or not at all. */
  hookIdAs: 'string' | 'integer' | 'none' = 'string'
  private nextId = 100

  constructor (readonly account: { email: string, password: string, kvms: string[] }) {
    super(request => this.handle(request))
  }

  apiUrl = (apiHost: string): string => `${this.base}/host/${apiHost}`

  static apiHost (kvm: string): string {
    return `${/\d+/.exec(kvm)?.[0] ?? '0'}.edisglobal.com`
  }

  /** The fields of each request to `path`, as the form body carried them. */
  fields (path: string): Array<Record<string, string>> {
    return this.to(path).map(request => Object.fromEntries(new URLSearchParams(request.body.toString())))
  }

  private handle (request: Recorded): { status: number, body: unknown } {
    const form = new URLSearchParams(request.body.toString())
    const fields = Object.fromEntries(form)
    if (request.method !== 'POST' || request.headers['content-type'] !== 'application/x-www-form-urlencoded') {
      return { status: 400, body: { status: 'error', message: `expected a form POST, got ${request.method} ${String(request.headers['content-type'])}` } }
    }
    if (request.path === '/kvm/v2/get/auth') {
      if (fields.email !== this.account.email || fields.pw !== this.account.password) {
        // Undocumented: an echo of the password, to prove the client cuts it out.
        return { status: 200, body: { status: 'error', message: `Login failed for ${fields.email} with pw ${fields.pw}` } }
      }
      const data = Object.fromEntries(this.account.kvms.map(kvm => {
        const signature = randomBytes(25).toString('hex')
        const validUntil = this.validUntil?.(Date.now()) ?? Math.floor(Date.now() / 1000) + this.ttl
        this.sessions.set(signature, { kvm, validUntil })
        const session = { api_host: FakeEdis.apiHost(kvm), api_rdns: 'dns-api.edis.at', kvm_id: kvm, valid_until: validUntil, signature }
        return [kvm, { ...session, suspended: 'n', description: `vps ${kvm}`, lps: '01', lps_ispremium: false }]
      }))
      return { status: 200, body: { data: this.account.kvms.length === 0 ? [] : data, status: 'success' } }
    }
    const match = /^\/host\/([^/]+)\/kvm\/v2\/hooks\/(set|del)$/.exec(request.path)
    const session = this.sessions.get(String(fields.signature))
    if (match === null) return { status: 404, body: { status: 'error', message: 'not found' } }
    const expired = typeof session?.validUntil === 'number' && session.validUntil * 1000 <= Date.now()
    if (session === undefined || expired || session.kvm !== fields.kvm_id ||
      String(session.validUntil) !== fields.valid_until || match[1] !== FakeEdis.apiHost(session.kvm)) {
      return { status: 200, body: { status: 'error', message: `invalid or expired session ${String(fields.signature)}` } }
    }
    if (match[2] === 'set') {
      const id = this.nextId++
      this.hooks.set(id, { id, kvm: session.kvm, fields })
      const hookId = this.hookIdAs === 'string' ? { hook_id: String(id) } : this.hookIdAs === 'integer' ? { hook_id: id } : {}
      return { status: 200, body: { status: 'success', ...hookId } }
    }
    const hook = this.hooks.get(Number(fields.id))
    if (hook === undefined || hook.kvm !== session.kvm) return { status: 200, body: { status: 'error', message: `no webhook with ID ${String(fields.id)}` } }
    this.hooks.delete(hook.id)
    return { status: 200, body: { status: 'success', message: `Webhook with ID ${hook.id} has been deleted.` } }
  }
}

export interface Jwt { header: Record<string, unknown>, claims: Record<string, unknown>, verified: boolean }

export interface VoximplantCall { cmd: string | undefined, fields: Record<string, string>, contentType: string, jwt: Jwt | undefined, authorization: string | undefined }

/** Voximplant: POST /platform_api, a multipart form with cmd, a Bearer JWT checked with the public key. */
export class FakeVoximplant extends FakeServer {
  readonly calls: VoximplantCall[] = []
  readonly account: Record<string, unknown>

  constructor (readonly publicKey: KeyObject, accountId: number, readonly apiKey = 'the-account-api-key-3b1f') {
    super(async request => await this.handle(request))
    this.account = { account_id: accountId, account_name: 'acme', api_key: apiKey, active: true }
  }

  private async handle (request: Recorded): Promise<{ status: number, body: unknown }> {
    const contentType = String(request.headers['content-type'])
    const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body: request.body }).formData()
    const fields = Object.fromEntries([...form].map(([name, value]) => [name, String(value)]))
    const authorization = request.headers.authorization
    const jwt = authorization?.startsWith('Bearer ') === true ? decode(authorization.slice(7), this.publicKey) : undefined
    this.calls.push({ cmd: fields.cmd, fields, contentType, jwt, authorization })
    const now = Math.floor(Date.now() / 1000)
    if (request.path !== '/platform_api') return { status: 404, body: { error: { code: 404, msg: 'Not found' } } }
    if (jwt?.verified !== true || jwt.claims.iss !== this.account.account_id || Number(jwt.claims.exp) < now) {
      return { status: 200, body: { error: { code: 100, msg: 'Authorization failed' } } }
    }
    if (fields.cmd === 'GetAccountInfo') return { status: 200, body: { result: { ...this.account }, api_address: 'https://api.voximplant.com/platform_api' } }
    if (fields.cmd === 'SetAccountInfo') {
      if (fields.callback_url !== undefined) this.account.callback_url = fields.callback_url
      if (fields.callback_salt !== undefined) this.account.callback_salt = fields.callback_salt
      return { status: 200, body: { result: 1 } }
    }
    return { status: 200, body: { error: { code: 101, msg: `Unknown command ${String(fields.cmd)}` } } }
  }
}

function decode (token: string, publicKey: KeyObject): Jwt | undefined {
  const [header, claims, signature] = token.split('.')
  if (header === undefined || claims === undefined || signature === undefined) return undefined
  const json = (part: string): Record<string, unknown> => JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>
  const verified = verify('sha256', Buffer.from(`${header}.${claims}`), publicKey, Buffer.from(signature, 'base64url'))
  return { header: json(header), claims: json(claims), verified }
}

/** A port nothing listens on (one just closed): a connection to it is refused. */
export async function closedPort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}
