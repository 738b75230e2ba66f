// The one place the provisioning clients call out (Node's fetch), and the one error they reject with:
// the providers document their success answers only, so anything else is a failure that names the
// call and shows what came back, with every secret of the call cut out.
export interface ProvisionHttpOptions {
  /** How long to wait for each answer, in ms. Default 30 s. */
  timeout?: number
  /** The fetch to call. Default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch
}

/** A provider's API refused a call, answered something unexpected, or could not be reached. */
export class ProvisionError extends Error {
  override name = 'ProvisionError'

  constructor (
    message: string,
    /** The call, e.g. `EDIS hooks/set (kvm_123456_789012)`. */
    readonly call: string,
    /** The answer's HTTP status; undefined when none came. */
    readonly status?: number,
    options?: ErrorOptions
  ) {
    super(message, options)
  }
}

export interface ApiCall {
  /** How the call is named in an error, e.g. `EDIS hooks/set (kvm_1)`. */
  call: string
  url: string
  body: URLSearchParams | FormData
  headers?: Record<string, string>
  /** What must never appear in an error: passwords, signatures, tokens. */
  secrets: readonly string[]
  /** Why a JSON answer is not a success, or undefined when it is one. */
  failure: (answer: Record<string, unknown>) => string | undefined
}

const DEFAULT_TIMEOUT = 30_000
const SHOWN = 300
const REDACTED = '[REDACTED]'

export async function callApi (request: ApiCall, options: ProvisionHttpOptions): Promise<Record<string, unknown>> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT
  const fail = (problem: string, status?: number, cause?: string): ProvisionError =>
    new ProvisionError(redact(`${request.call}: ${problem}`, request.secrets), request.call, status, cause === undefined ? undefined : { cause: new Error(redact(cause, request.secrets)) })
  let status: number
  let text: string
  try {
    // A form as the docs' curl sends it: fetch would add ;charset=UTF-8 to the type.
    const form = request.body instanceof URLSearchParams
    const response = await (options.fetch ?? globalThis.fetch)(request.url, {
      method: 'POST',
      body: form ? request.body.toString() : request.body,
      headers: form ? { ...request.headers, 'Content-Type': 'application/x-www-form-urlencoded' } : request.headers,
      // A redirect would carry the form (a password) to wherever it points.
      redirect: 'error',
      signal: AbortSignal.timeout(timeout)
    })
    status = response.status
    text = await response.text()
  } catch (error) {
    const { name, cause } = error as Error & { cause?: NodeJS.ErrnoException }
    if (name === 'TimeoutError') throw fail(`no answer within ${timeout} ms`)
    const reason = cause?.message ?? (error as Error).message
    throw fail(`cannot reach ${new URL(request.url).origin}: ${cause?.code ?? reason}`, undefined, reason)
  }
  const answer = parse(text)
  if (status < 200 || status > 299) throw fail(`HTTP ${status}: ${shown(text, request.secrets)}`, status)
  if (answer === undefined) throw fail(`the answer is not a JSON object (HTTP ${status}): ${shown(text, request.secrets)}`, status)
  const failure = request.failure(answer)
  if (failure !== undefined) throw fail(`${failure}: ${shown(text, request.secrets)}`, status)
  return answer
}

function parse (text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

// What of an answer goes into a message: keys, salts and the like (Voximplant's GetAccountInfo
// carries the account's api_key) are cut out by name, as well as the call's own secrets by value.
const SECRET_NAME = /key|salt|secret|signature|password|pw|token/i

// Redacted before anything else is done to the text: a secret cut at the end of what is shown, or
// with its whitespace folded, would no longer be found, and part of it would show.
function shown (text: string, secrets: readonly string[]): string {
  const answer = parse(text)
  const safe = answer === undefined ? text : JSON.stringify(answer, (name, value: unknown) => SECRET_NAME.test(name) && typeof value !== 'object' ? REDACTED : value)
  const flat = redact(safe, secrets).replace(/\s+/g, ' ').trim()
  if (flat === '') return '(an empty body)'
  return flat.length > SHOWN ? `${flat.slice(0, SHOWN)}... (${text.length} characters)` : flat
}

/** `text` with each secret, as it is and URL-encoded, replaced. Longest first: one may hold another. */
export function redact (text: string, secrets: readonly string[]): string {
  const forms = secrets.filter(secret => secret.length > 0)
    .flatMap(secret => [secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2), JSON.stringify(secret).slice(1, -1)])
    .sort((a, b) => b.length - a.length)
  return forms.reduce((result, secret) => result.replaceAll(secret, REDACTED), text)
}
