// `provider-callbacks send edis`: one EDIS Global traffic-threshold callback, as EDIS sends it.
import type { OutgoingHttpHeaders } from 'node:http'
import { parseArgs } from 'node:util'
import { edisTrafficBody, type EdisTrafficFields } from '../testing.js'
import { MASK, NAME, address, choice, integer, parsed, print, targetUrl, UsageError, userAgent, type CliIO } from './common.js'
import { answerLine, bodyHeaders, exchange, isSuccess, type Delivery } from './wire.js'

const USAGE = `Usage: ${NAME} send edis --url URL [options]

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

function edisArgs (args: string[]) {
  return parsed(() => parseArgs({
    args,
    options: {
      url: { type: 'string' },
      timeout: { type: 'string', default: '10000' },
      help: { type: 'boolean', short: 'h' },
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
  }).values, USAGE)
}

interface EdisCredentials { user: string, password: string, as: 'basic' | 'fields' }

export async function sendEdis (args: string[], io: CliIO): Promise<number> {
  const values = edisArgs(args)
  if (values.help === true) return print(USAGE, io)
  const url = targetUrl(values.url, USAGE)
  const timeout = integer(values.timeout, '--timeout', 1, USAGE)
  const trigger = triggerValue(values.trigger)
  const method = choice(values.method, '--method', ['post', 'get'], USAGE).toUpperCase()
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
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`--trigger must be a percentage (an integer) or demo, got '${text}'`, USAGE)
  return Number(text)
}

// Flags win over the environment; a user without a password (or the reverse) is a mistake.
function edisCredentials (values: ReturnType<typeof edisArgs>, env: CliIO['env']): EdisCredentials | undefined {
  const user = values.user ?? env.EDIS_CALLBACK_USER
  const password = values.password ?? env.EDIS_CALLBACK_PW
  const as = choice(values.credentials, '--credentials', ['basic', 'fields'], USAGE)
  if (user !== undefined && password !== undefined) return { user, password, as }
  if (user !== undefined || password !== undefined) {
    throw new UsageError('--user and --password go together (or EDIS_CALLBACK_USER and EDIS_CALLBACK_PW)', USAGE)
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
