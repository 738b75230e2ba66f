// provider-callbacks: sends a URL the callbacks EDIS Global and Voximplant send, encoded and signed
// as they send them, to try a receiving route (this plugin's or any other) end to end, over the wire.
import { realpathSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { inboxCommand } from './cli/inbox.js'
import { edisTrafficBody, voximplantBatch, voximplantCallback, type EdisTrafficFields } from './testing.js'
import { voximplantPayloads, type VoximplantCallbackType } from './voximplant/payloads.js'

/** Where the CLI writes and what environment it reads: the process's own unless a test says otherwise. */
export interface CliIO {
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
  env: Record<string, string | undefined>
}

const NAME = 'provider-callbacks'
const MASK = '****'
// Above this many requests a run lists only failures, with progress on stderr, so that a load of a
// thousand callbacks does not bury the one that failed.
const QUIET_ABOVE = 20

const USAGE = `Usage: ${NAME} <command> [options]

Sends a URL the callbacks a provider sends, encoded and signed as the provider does, over HTTP(S):
to try your route end to end, locally or deployed.

Commands:
  send edis         an EDIS Global traffic-threshold callback (form POST, or GET)
  send voximplant   Voximplant account callbacks, signed, in JSON batches
  inbox             an inbox's dead letters: failed, retry EVENT_ID, retry-failed

Options:
  -h, --help        this help; '${NAME} send <provider> --help' for a command's options
  --version         the version

Exit codes: 0 every answer was 2xx; 1 an answer was not, or the URL could not be reached;
2 the command line was wrong.
`

const EDIS_USAGE = `Usage: ${NAME} send edis --url URL [options]

Sends one EDIS Global traffic-threshold callback to URL as EDIS does: kvm, details and
trigger_value as an application/x-www-form-urlencoded POST body, or in the query of a GET, with the
hook's callback_user / callback_pw if it has them.

Options:
  --url URL                    where to send it, http or https (required),
                               e.g. http://localhost:3000/callbacks/edis
  --kvm ID                     the KVM VPS id (default kvm_123456_789012)
  --trigger N|demo             trigger_value: the traffic usage in percent that fired the hook,
                               or demo for EDIS's test delivery (default 80)
  --details TEXT               (default "Traffic usage reached <trigger>%")
  --user USER                  callback_user (env EDIS_CALLBACK_USER)
  --password PASSWORD          callback_pw (env EDIS_CALLBACK_PW, which keeps it out of your
                               shell history); never printed
  --credentials basic|fields   how the credentials go: an Authorization: Basic header, or
                               callback_user and callback_pw fields next to the others
                               (default basic)
  --method post|get            (default post)
  --raw                        send the fields unencoded, raw spaces and a bare %, as the EDIS
                               docs' curl --data does. With --method get, what a request line
                               cannot carry is still encoded (a space as %20, control and
                               non-ASCII characters as UTF-8 %XX); a bare % is left alone
  --timeout MS                 how long to wait for the answer (default 10000)
  -h, --help                   this help
`

const VOXIMPLANT_USAGE = `Usage: ${NAME} send voximplant --url URL --type TYPE [options]

Sends Voximplant account callbacks of one type to URL as Voximplant does: items with realistic
values (the type's documented example payload), each signed with
md5(salt + account_id + api_key + callback_id), POSTed as application/json { "callbacks": [...] }.

Options:
  --url URL             where to send them, http or https (required),
                        e.g. http://localhost:3000/callbacks/voximplant
  --type TYPE           the callback type, e.g. min_balance (required; a wrong one lists them all)
  --account ID          account_id (env VOX_ACCOUNT_ID; default 1234567)
  --api-key KEY         the account's API key, which signs the callbacks (required;
                        env VOX_API_KEY); never printed
  --salt SALT           the webhook's security salt (env VOX_SALT; default none); never printed
  --count N             how many callbacks (default 1)
  --batch N             callbacks per request (default 1)
  --callback-id N       callback_id of the first callback, counted up from there (default: a
                        random first id, fresh in every run)
  --timeout MS          how long to wait for each answer (default 10000)
  -h, --help            this help

Up to ${QUIET_ABOVE} requests, each is listed with its answer; above, only the failures are, with
progress on stderr and a summary at the end.
`

class UsageError extends Error {
  constructor (message: string, readonly usage: string) {
    super(message)
  }
}

/**
 * Runs the command line `argv` (without `node` and the script) and resolves to the exit code:
 * 0 when every answer was 2xx, 1 when one was not or the URL could not be reached, 2 for a wrong
 * command line.
 */
export async function main (argv: string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  try {
    return await dispatch(argv, io)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    io.stderr.write(`${NAME}: ${error.message}\n\n${error.usage}`)
    return 2
  }
}

async function dispatch (argv: string[], io: CliIO): Promise<number> {
  const [command, provider, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h') return print(USAGE, io)
  if (command === '--version') return print(`${version()}\n`, io)
  if (command === 'inbox') return await inboxCommand(argv.slice(1), io)
  if (command !== 'send') throw new UsageError(`unknown command '${command}'`, USAGE)
  if (provider === '--help' || provider === '-h') return print(USAGE, io)
  if (provider === 'edis') return await sendEdis(rest, io)
  if (provider === 'voximplant') return await sendVoximplant(rest, io)
  throw new UsageError(provider === undefined ? 'send what? send edis or send voximplant' : `unknown provider '${provider}': edis or voximplant`, USAGE)
}

function print (text: string, io: CliIO): number {
  io.stdout.write(text)
  return 0
}

// lib/ is compiled to CommonJS too, where import.meta does not exist, and this file sits at another
// depth in dist/esm/ than in lib/. The entry script (bin/provider-callbacks.js, or the test fixture)
// is always inside the package, so a require() from there finds package.json by the package's name.
function version (): string {
  const load = createRequire(realpathSync(String(process.argv[1])))
  return (load('fastify-provider-callbacks/package.json') as { version: string }).version
}

// parseArgs's messages, cut to their first sentence: the rest tells how to pass a positional.
function parsed<T> (parse: () => T, usage: string): T {
  try {
    return parse()
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/(\.\s|\.?\n)[\s\S]*$/, ''), usage)
  }
}

const commonOptions = {
  url: { type: 'string' },
  timeout: { type: 'string', default: '10000' },
  help: { type: 'boolean', short: 'h' }
} as const

function targetUrl (text: string | undefined, usage: string): URL {
  if (text === undefined) throw new UsageError('missing --url', usage)
  const url = URL.canParse(text) ? new URL(text) : undefined
  // A password there would go out as an Authorization header, and be printed (so not even quoted here).
  if (url !== undefined && (url.username !== '' || url.password !== '')) throw new UsageError('--url must not hold a user or password', usage)
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(`--url must be an http or https URL, got '${text}'`, usage)
  }
  return url
}

function integer (text: string, label: string, min: number, usage: string): number {
  if (!/^\d{1,15}$/.test(text) || Number(text) < min) {
    throw new UsageError(`${label} must be an integer of at least ${min}, got '${text}'`, usage)
  }
  return Number(text)
}

function choice<T extends string> (text: string, label: string, choices: readonly T[], usage: string): T {
  const value = text.toLowerCase() as T
  if (!choices.includes(value)) throw new UsageError(`${label} must be ${choices.join(' or ')}, got '${text}'`, usage)
  return value
}

function plural (count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`
}

/** The URL as printed: no fragment (it is not sent). */
function address (url: URL): string {
  return url.origin + url.pathname + url.search
}

function edisArgs (args: string[]) {
  return parsed(() => parseArgs({
    args,
    options: {
      ...commonOptions,
      kvm: { type: 'string', default: 'kvm_123456_789012' },
      trigger: { type: 'string', default: '80' },
      details: { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      credentials: { type: 'string', default: 'basic' },
      method: { type: 'string', default: 'post' },
      raw: { type: 'boolean', default: false }
    },
    strict: true,
    allowPositionals: false
  }).values, EDIS_USAGE)
}

interface EdisCredentials { user: string, password: string, as: 'basic' | 'fields' }

async function sendEdis (args: string[], io: CliIO): Promise<number> {
  const values = edisArgs(args)
  if (values.help === true) return print(EDIS_USAGE, io)
  const url = targetUrl(values.url, EDIS_USAGE)
  const timeout = integer(values.timeout, '--timeout', 1, EDIS_USAGE)
  const trigger = triggerValue(values.trigger)
  const method = choice(values.method, '--method', ['post', 'get'], EDIS_USAGE).toUpperCase()
  const credentials = edisCredentials(values, io.env)

  const fields: EdisTrafficFields = { kvm: values.kvm, trigger_value: trigger }
  if (values.details !== undefined) fields.details = values.details
  const headers: OutgoingHttpHeaders = { 'User-Agent': userAgent() }
  if (credentials?.as === 'fields') {
    fields.callback_user = credentials.user
    fields.callback_pw = credentials.password
  } else if (credentials !== undefined) {
    headers.Authorization = 'Basic ' + Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')
  }
  const encoding = values.raw ? 'raw' : 'form'
  const text = edisTrafficBody(fields, { encoding })
  // What is printed: the same, with the password (if it is a field) masked.
  const shown = edisTrafficBody({ ...fields, callback_pw: fields.callback_pw === undefined ? undefined : MASK }, { encoding })

  io.stdout.write(`edis: ${method} ${address(url)} ${edisSender(credentials)}, kvm ${values.kvm}, trigger_value ${trigger}\n`)
  const delivery: Delivery = method === 'GET'
    ? { method, path: withQuery(url, text), shown: withQuery(url, shown), headers }
    : { method, path: url.pathname + url.search, shown: url.pathname + url.search, headers: { ...headers, ...bodyHeaders('application/x-www-form-urlencoded', text) }, body: text }
  const answer = await exchange(url, delivery, timeout, io)
  if (answer === undefined) return 1
  io.stdout.write(answerLine(url, delivery, answer))
  return isSuccess(answer) ? 0 : 1
}

function triggerValue (text: string): number | 'demo' {
  if (text === 'demo') return text
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`--trigger must be a percentage (an integer) or demo, got '${text}'`, EDIS_USAGE)
  return Number(text)
}

// Flags win over the environment; a user without a password (or the reverse) is a mistake.
function edisCredentials (values: ReturnType<typeof edisArgs>, env: CliIO['env']): EdisCredentials | undefined {
  const user = values.user ?? env.EDIS_CALLBACK_USER
  const password = values.password ?? env.EDIS_CALLBACK_PW
  const as = choice(values.credentials, '--credentials', ['basic', 'fields'], EDIS_USAGE)
  if (user !== undefined && password !== undefined) return { user, password, as }
  if (user !== undefined || password !== undefined) {
    throw new UsageError('--user and --password go together (or EDIS_CALLBACK_USER and EDIS_CALLBACK_PW)', EDIS_USAGE)
  }
  return undefined
}

function edisSender (credentials: EdisCredentials | undefined): string {
  if (credentials === undefined) return 'without credentials'
  return `as ${credentials.user}:${MASK} (${credentials.as === 'basic' ? 'Authorization: Basic' : 'callback_user/callback_pw fields'})`
}

// A request line cannot carry a space, a control character or a non-ASCII one: those are encoded
// (a form-encoded query has none, so this changes only a raw one); a bare % is left as it is.
function withQuery (url: URL, query: string): string {
  const safe = query.replace(/[^\x21-\x7e]+/g, encodeURIComponent)
  return `${url.pathname}${url.search}${url.search === '' ? '?' : '&'}${safe}`
}

function bodyHeaders (contentType: string, text: string): OutgoingHttpHeaders {
  return { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) }
}

function userAgent (): string {
  return `${NAME}/${version()}`
}

function voximplantArgs (args: string[]) {
  return parsed(() => parseArgs({
    args,
    options: {
      ...commonOptions,
      type: { type: 'string' },
      account: { type: 'string' },
      'api-key': { type: 'string' },
      salt: { type: 'string' },
      count: { type: 'string', default: '1' },
      batch: { type: 'string', default: '1' },
      'callback-id': { type: 'string' }
    },
    strict: true,
    allowPositionals: false
  }).values, VOXIMPLANT_USAGE)
}

async function sendVoximplant (args: string[], io: CliIO): Promise<number> {
  const values = voximplantArgs(args)
  if (values.help === true) return print(VOXIMPLANT_USAGE, io)
  const url = targetUrl(values.url, VOXIMPLANT_USAGE)
  const timeout = integer(values.timeout, '--timeout', 1, VOXIMPLANT_USAGE)
  const type = callbackType(values.type)
  const accountId = integer(values.account ?? io.env.VOX_ACCOUNT_ID ?? '1234567', '--account (or VOX_ACCOUNT_ID)', 0, VOXIMPLANT_USAGE)
  const secret = { apiKey: apiKey(values['api-key'] ?? io.env.VOX_API_KEY), salt: values.salt ?? io.env.VOX_SALT }
  const count = integer(values.count, '--count', 1, VOXIMPLANT_USAGE)
  const batch = integer(values.batch, '--batch', 1, VOXIMPLANT_USAGE)
  const firstId = values['callback-id'] === undefined ? undefined : integer(values['callback-id'], '--callback-id', 0, VOXIMPLANT_USAGE)

  const requests = Math.ceil(count / batch)
  const signedWith = `API key ${MASK}, ${secret.salt === undefined ? 'no salt' : `salt ${MASK}`}`
  io.stdout.write(`voximplant: POST ${address(url)} as account ${accountId} (${signedWith}), ${plural(count, `${type} callback`)} in ${plural(requests, 'request')}\n`)
  const item = (n: number): unknown =>
    voximplantCallback(type, firstId === undefined ? { account_id: accountId } : { account_id: accountId, callback_id: firstId + n }, secret)
  const headers = { 'User-Agent': userAgent() }
  const progress = new Progress(count, requests, io)
  for (let first = 0; first < count; first += batch) {
    const items = Array.from({ length: Math.min(batch, count - first) }, (_, i) => item(first + i))
    const text = JSON.stringify(voximplantBatch(items))
    const path = url.pathname + url.search
    const delivery = { method: 'POST', path, shown: path, headers: { ...headers, ...bodyHeaders('application/json', text) }, body: text }
    const answer = await exchange(url, delivery, timeout, io)
    if (answer === undefined) return 1
    progress.answered(items.length, answerLine(url, delivery, answer), isSuccess(answer), answer.status)
  }
  return progress.done()
}

function callbackType (type: string | undefined): VoximplantCallbackType {
  if (type === undefined || !Object.hasOwn(voximplantPayloads, type)) {
    const known = Object.keys(voximplantPayloads).join(', ')
    throw new UsageError(`${type === undefined ? 'missing --type' : `unknown --type '${type}'`}: one of ${known}`, VOXIMPLANT_USAGE)
  }
  return type as VoximplantCallbackType
}

function apiKey (key: string | undefined): string {
  if (key === undefined || key === '') throw new UsageError('missing the API key: pass --api-key or set VOX_API_KEY', VOXIMPLANT_USAGE)
  return key
}

/** A run's answers: each listed while there are few, then failures only, progress and a summary. */
class Progress {
  private sent = 0
  private decile = 0
  private failed = false
  private readonly statuses = new Map<number, number>()

  constructor (private readonly count: number, private readonly requests: number, private readonly io: CliIO) {}

  answered (items: number, line: string, success: boolean, status: number): void {
    this.sent += items
    this.failed ||= !success
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1)
    const quiet = this.requests > QUIET_ABOVE
    if (!quiet || !success) this.io.stdout.write(line)
    const decile = Math.floor(this.sent * 10 / this.count)
    if (quiet && decile > this.decile) {
      this.decile = decile
      this.io.stderr.write(`sent ${this.sent}/${this.count} callbacks (${Math.floor(this.sent * 100 / this.count)}%)\n`)
    }
  }

  done (): number {
    if (this.requests > 1) {
      const statuses = [...this.statuses].map(([status, times]) => `${times} x ${status}`).join(', ')
      this.io.stdout.write(`${plural(this.count, 'callback')} in ${plural(this.requests, 'request')}: ${statuses}\n`)
    }
    return this.failed ? 1 : 0
  }
}

interface Delivery {
  method: string
  /** Path and query, exactly as they go on the request line. */
  path: string
  /** The same, as printed: no secret in it. */
  shown: string
  headers: OutgoingHttpHeaders
  body?: string
}

interface Answer { status: number, body: string }

function isSuccess (answer: Answer): boolean {
  return answer.status >= 200 && answer.status < 300
}

function answerLine (url: URL, delivery: Delivery, answer: Answer): string {
  return `${delivery.method} ${url.origin}${delivery.shown} -> ${answer.status} ${answer.body}\n`
}

/**
 * Sends `delivery` with node:http(s), not fetch, so that the bytes and headers are exactly what the
 * provider would send: Host (and Connection) are Node's, the rest is the delivery's. Resolves to
 * undefined, the failure reported, when the URL cannot be reached or does not answer in time.
 */
async function exchange (url: URL, delivery: Delivery, timeout: number, io: CliIO): Promise<Answer | undefined> {
  try {
    return await new Promise<Answer>((resolve, reject) => {
      const send: typeof httpRequest = url.protocol === 'https:' ? httpsRequest : httpRequest
      const request = send(url, { method: delivery.method, path: delivery.path, headers: delivery.headers, timeout }, response => {
        collect(response, resolve, reject)
      })
      request.on('timeout', () => { request.destroy(new Error(`no answer within ${timeout} ms`)) })
      request.on('error', reject)
      request.end(delivery.body)
    })
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException
    io.stderr.write(`cannot reach ${url.origin}${delivery.shown}: ${code ?? message}\n`)
    return undefined
  }
}

function collect (response: IncomingMessage, resolve: (answer: Answer) => void, reject: (error: Error) => void): void {
  const chunks: Buffer[] = []
  response.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  response.on('error', reject)
  response.on('end', () => { resolve({ status: Number(response.statusCode), body: Buffer.concat(chunks).toString() }) })
}
