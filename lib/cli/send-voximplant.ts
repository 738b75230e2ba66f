// `provider-callbacks send voximplant`: Voximplant account callbacks, signed, in JSON batches.
import { parseArgs } from 'node:util'
import { voximplantBatch, voximplantCallback } from '../testing.js'
import { voximplantPayloads, type VoximplantCallbackType } from '../voximplant/payloads.js'
import { MASK, NAME, address, integer, parsed, plural, print, targetUrl, UsageError, userAgent, type CliIO } from './common.js'
import { answerLine, bodyHeaders, exchange, isSuccess } from './wire.js'

// Above this many requests a run lists only failures, with progress on stderr, so that a load of a
// thousand callbacks does not bury the one that failed.
const QUIET_ABOVE = 20

const USAGE = `Usage: ${NAME} send voximplant --url URL --type TYPE [options]

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

function voximplantArgs (args: string[]) {
  return parsed(() => parseArgs({
    args,
    options: {
      url: { type: 'string' },
      timeout: { type: 'string', default: '10000' },
      help: { type: 'boolean', short: 'h' },
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
  }).values, USAGE)
}

export async function sendVoximplant (args: string[], io: CliIO): Promise<number> {
  const values = voximplantArgs(args)
  if (values.help === true) return print(USAGE, io)
  const url = targetUrl(values.url, USAGE)
  const timeout = integer(values.timeout, '--timeout', 1, USAGE)
  const type = callbackType(values.type)
  const accountId = integer(values.account ?? io.env.VOX_ACCOUNT_ID ?? '1234567', '--account (or VOX_ACCOUNT_ID)', 0, USAGE)
  const secret = { apiKey: apiKey(values['api-key'] ?? io.env.VOX_API_KEY), salt: values.salt ?? io.env.VOX_SALT }
  const count = integer(values.count, '--count', 1, USAGE)
  const batch = integer(values.batch, '--batch', 1, USAGE)
  const firstId = values['callback-id'] === undefined ? undefined : integer(values['callback-id'], '--callback-id', 0, USAGE)

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
    throw new UsageError(`${type === undefined ? 'missing --type' : `unknown --type '${type}'`}: one of ${known}`, USAGE)
  }
  return type as VoximplantCallbackType
}

function apiKey (key: string | undefined): string {
  if (key === undefined || key === '') throw new UsageError('missing the API key: pass --api-key or set VOX_API_KEY', USAGE)
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
