/**
 * A runnable tour of the plugin's routes. `npm run demo` starts an app with the plugin, sends it over
 * real HTTP the callbacks EDIS and Voximplant send (and a few it must refuse), prints what happened to
 * each, then keeps serving so you can try it with curl. `npm run demo -- --once` stops after the
 * samples and exits 1 if any answer was not the expected one, so it doubles as a smoke test;
 * `--telemetry` runs it under the OpenTelemetry SDK and prints the spans and metric points it made.
 *
 * Environment: PORT (default 3000; a free port if that one is busy), EDIS_CALLBACK_PW (the hook's
 * password), VOX_API_KEY and VOX_SALT (the Voximplant account's API key and the webhook's security
 * salt); built-in demo values for the three otherwise. PUBLIC_URL: the address the providers reach
 * the demo at (a tunnel's), for the setup commands it prints; the local one otherwise.
 */
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import providerCallbacks, { bullmqInbox, VoximplantCallbackSchemas, type TelemetryOptions, type VoximplantCallbackType } from '../lib/index.js'
// The test kit builds the samples, as users build deliveries in their own tests.
import { edisTrafficBody, voximplantCallback, voximplantHash } from '../lib/testing.js'
// Not from the package's entry point: a receiver only checks hashes, but the demo plays Voximplant
// and has to make them.
import type { VoximplantSecret } from '../lib/voximplant/hash.js'

const HOST = '127.0.0.1'
// The plugin's defaults: prefix '/callbacks', edis.path '/edis' and voximplant.path '/voximplant'.
const ROUTES = { edis: '/callbacks/edis', voximplant: '/callbacks/voximplant' } as const
const USERNAME = 'hook'
// Anyone can read this one here, so it is only good for trying the demo. A password passed in
// EDIS_CALLBACK_PW is treated as a real secret: the demo never prints it.
const BUILT_IN_PASSWORD = 'demo-only-not-secret'
const password = process.env.EDIS_CALLBACK_PW || BUILT_IN_PASSWORD
const MASKED = '****'

// The sample API key of Voximplant's docs, and a salt as public: like the built-in EDIS password,
// only good for trying the demo. VOX_API_KEY and VOX_SALT are real secrets, never printed.
const BUILT_IN_API_KEY = 'eec36d6c-a0eb-46b5-a006-1c2b65343bac'
const BUILT_IN_SALT = 'mySecretSalt'
const voximplantSecret: VoximplantSecret = {
  apiKey: process.env.VOX_API_KEY || BUILT_IN_API_KEY,
  // `??`, not `||`: VOX_SALT set but empty is a webhook without a salt, which Voximplant allows.
  salt: process.env.VOX_SALT ?? BUILT_IN_SALT
}
const secretFromEnvironment = Boolean(process.env.VOX_API_KEY) || process.env.VOX_SALT !== undefined

/** How an EDIS sample carries the hook's credentials. */
type Auth = 'basic' | 'fields' | 'wrong-password'

interface Expected {
  status: number
  /** How many events the handlers get: one per accepted callback, none when the delivery is refused. */
  events: number
}

interface EdisSample {
  provider: 'edis'
  label: string
  description: string
  method: 'POST' | 'GET'
  auth: Auth
  /** The form text exactly as it goes on the wire: the body of a POST, the query of a GET. */
  form: string
  expected: Expected
}

/** One callback of a Voximplant batch; the demo adds the account's fields and signs it. */
interface VoximplantItem {
  type: string
  callbackId: number
  balance: number
  /** What goes under the key named like the type, if not the kit's realistic default. */
  payload?: unknown
  /** Said after the item in the batch line, when something about it is the point of the sample. */
  note?: string
  /** Hashed with a wrong API key, as by someone who does not have the account's. */
  forged?: boolean
}

interface VoximplantSample {
  provider: 'voximplant'
  label: string
  description: string
  items: VoximplantItem[]
  expected: Expected
}

type Sample = EdisSample | VoximplantSample

const SAMPLES: readonly Sample[] = [
  {
    provider: 'edis',
    label: 'a',
    description: 'canonical form encoding, HTTP Basic credentials',
    method: 'POST',
    auth: 'basic',
    form: edisTrafficBody({ trigger_value: 80 }),
    expected: { status: 200, events: 1 }
  },
  {
    provider: 'edis',
    label: 'b',
    description: 'as the EDIS docs\' curl sends it: raw spaces and a bare %, credentials as fields',
    method: 'POST',
    auth: 'fields',
    form: edisTrafficBody({ trigger_value: 100 }, { encoding: 'raw' }),
    expected: { status: 200, events: 1 }
  },
  {
    provider: 'edis',
    label: 'c',
    description: 'GET variant (hook set with callback_method=get), a test delivery',
    method: 'GET',
    auth: 'basic',
    form: edisTrafficBody({ details: 'Traffic usage reached 80%', trigger_value: 'demo' }),
    expected: { status: 200, events: 1 }
  },
  {
    provider: 'edis',
    label: 'd',
    description: 'forged: the right username with a wrong password',
    method: 'POST',
    auth: 'wrong-password',
    form: edisTrafficBody({ trigger_value: 80 }),
    expected: { status: 401, events: 0 }
  },
  {
    provider: 'edis',
    label: 'e',
    description: 'malformed: no kvm, trigger_value is not a number',
    method: 'POST',
    auth: 'basic',
    form: 'details=Traffic+usage+reached+80%25&trigger_value=abc',
    expected: { status: 400, events: 0 }
  },
  {
    provider: 'edis',
    label: 'f',
    description: 'a repeated field: two trigger_values, so which one is meant?',
    method: 'POST',
    auth: 'basic',
    form: 'kvm=kvm_123456_789012&trigger_value=80&trigger_value=90',
    expected: { status: 400, events: 0 }
  },
  {
    provider: 'voximplant',
    label: 'g',
    description: 'a signed batch of three; sms_inbound comes nested once, and handlers get it in the documented twice-nested shape',
    items: [
      { type: 'min_balance', callbackId: 58210, balance: 4.2 },
      { type: 'card_payment', callbackId: 58211, balance: 54.2 },
      // `sms_inbound: { sms_body, ... }`, as a third-party handler reads it, not the docs' `sms_inbound: { sms_inbound: { ... } }`.
      { type: 'sms_inbound', callbackId: 58212, balance: 54.19, payload: { source_number: '447443332212', destination_number: '447443332211', sms_body: 'Hello' }, note: 'nested once' }
    ],
    expected: { status: 200, events: 3 }
  },
  {
    provider: 'voximplant',
    label: 'h',
    description: 'forged: one good item, one hashed with a wrong API key; the batch is refused whole, so the good item is not emitted either',
    items: [
      { type: 'min_balance', callbackId: 58213, balance: 3.9 },
      { type: 'card_payment', callbackId: 58214, balance: 53.9, forged: true }
    ],
    expected: { status: 401, events: 0 }
  },
  {
    provider: 'voximplant',
    label: 'i',
    description: 'a type this version of the plugin does not know, signed: acknowledged, and delivered to onAny',
    items: [
      { type: 'quantum_entanglement_detected', callbackId: 58215, balance: 53.9, payload: { pair_id: 'qe-42', fidelity: 0.98 } }
    ],
    expected: { status: 200, events: 1 }
  },
  {
    provider: 'voximplant',
    label: 'j',
    description: 'malformed but signed: a min_balance whose is_repeated is not a boolean',
    items: [
      { type: 'min_balance', callbackId: 58216, balance: 3.8, payload: { is_min_credit: false, is_repeated: 'yes' }, note: 'is_repeated "yes"' }
    ],
    expected: { status: 400, events: 0 }
  }
]

// Counted by the handler, so each delivery can say whether the handlers ran for it.
let eventsReceived = 0

// Handler lines stay on one line whatever the payload: a Voximplant item is a few hundred characters.
function oneLine (value: unknown, max = 200): string {
  const text = JSON.stringify(value)
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

async function buildApp (telemetry: TelemetryOptions | undefined): Promise<FastifyInstance> {
  // 'warn' keeps the output readable: the plugin logs refused callbacks at info.
  const app = Fastify({ logger: { level: 'warn' } })
  await app.register(providerCallbacks, {
    ...(telemetry === undefined ? {} : { telemetry }),
    edis: {
      credentials: { username: USERNAME, password },
      allowedIps: ['127.0.0.1', '::1']
    },
    voximplant: {
      secret: voximplantSecret
    }
  })
  // onAny rather than handlers by name: it is the only way to see callbacks of types the plugin
  // does not know, like sample (i)'s.
  app.providerCallbacks.onAny(async event => {
    eventsReceived++
    console.log(`    handler  got '${event.name}', id ${event.id}`)
    console.log(`             payload ${oneLine(event.payload)}`)
  })
  return app
}

/** Listens on PORT (default 3000), or on a free port if that one is taken; returns the base URL. */
async function listen (app: FastifyInstance): Promise<string> {
  const wanted = Number(process.env.PORT ?? 3000)
  if (!Number.isInteger(wanted) || wanted < 0 || wanted > 65535) {
    throw new Error(`PORT must be a port number (0-65535), got ${JSON.stringify(process.env.PORT)}`)
  }
  try {
    await app.listen({ host: HOST, port: wanted })
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EADDRINUSE')) throw error
    await app.listen({ host: HOST, port: 0 })
    console.log(`Port ${wanted} is busy, so the demo took a free one instead.`)
  }
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`)
  return `http://${HOST}:${address.port}`
}

interface Outgoing {
  method: 'POST' | 'GET'
  route: string
  url: string
  init: RequestInit
  /** What may be printed about the request, as [label, text] lines: secrets masked or left out. */
  shown: Array<[string, string]>
}

function basicHeader (user: string, pw: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pw}`, 'utf8').toString('base64')
}

function prepareEdis (base: string, sample: EdisSample): Outgoing {
  const route = ROUTES.edis
  const headers: Record<string, string> = {}
  let form = sample.form
  let shownForm = sample.form
  let shownAuth = `Basic ${USERNAME}:${MASKED}`
  switch (sample.auth) {
    case 'basic':
      headers.authorization = basicHeader(USERNAME, password)
      break
    case 'wrong-password':
      headers.authorization = basicHeader(USERNAME, `not-${password}`)
      shownAuth += ' (a wrong password)'
      break
    case 'fields':
      // Encoded, unlike the rest of this form: a password with & or % in it must stay one value.
      form += `&callback_user=${USERNAME}&callback_pw=${encodeURIComponent(password)}`
      shownForm += `&callback_user=${USERNAME}&callback_pw=${MASKED}`
      shownAuth = 'callback_user / callback_pw fields'
      break
  }
  if (sample.method === 'GET') {
    const shown: Outgoing['shown'] = [['auth', shownAuth], ['query', shownForm]]
    return { method: 'GET', route, url: `${base}${route}?${form}`, init: { method: 'GET', headers }, shown }
  }
  headers['content-type'] = 'application/x-www-form-urlencoded'
  // Bytes, not URLSearchParams (which would re-encode): the raw spaces and bare % of sample (b)
  // must reach the server exactly as EDIS's own curl example sends them.
  const body = new TextEncoder().encode(form)
  const shown: Outgoing['shown'] = [['auth', shownAuth], ['body', shownForm]]
  return { method: 'POST', route, url: `${base}${route}`, init: { method: 'POST', headers, body }, shown }
}

const ACCOUNT_ID = 1234567
// Every item carries the account's details; the docs' sample account.
const ACCOUNT_FIELDS = {
  account_name: 'myaccount',
  account_email: 'dev@example.com',
  language_code: 'en',
  account_first_name: 'John',
  account_last_name: 'Doe'
}

/** An item as Voximplant sends it, built and signed by the test kit. */
function wireItem (item: VoximplantItem): Record<string, unknown> {
  const secret = item.forged === true ? { ...voximplantSecret, apiKey: `not-${voximplantSecret.apiKey}` } : voximplantSecret
  const fields = { callback_id: item.callbackId, balance: item.balance, ...(item.payload === undefined ? {} : { [item.type]: item.payload }) }
  if (item.type in VoximplantCallbackSchemas) return voximplantCallback(item.type as VoximplantCallbackType, fields, secret)
  // A type the kit does not know (the plugin must still take it): built here, signed with the kit's hash.
  const hash = voximplantHash({ ...secret, accountId: ACCOUNT_ID, callbackId: item.callbackId })
  return { type: item.type, account_id: ACCOUNT_ID, ...fields, hash, ...ACCOUNT_FIELDS, currency: 'USD' }
}

function voximplantBody (items: readonly VoximplantItem[]): string {
  return JSON.stringify({ callbacks: items.map(wireItem) })
}

function prepareVoximplant (base: string, sample: VoximplantSample): Outgoing {
  const route = ROUTES.voximplant
  const { items } = sample
  const listed = items.map(item => `${item.type} #${item.callbackId}${item.note === undefined ? '' : ` (${item.note})`}`)
  const forged = items.filter(item => item.forged === true)
  const signing: [string, string] = forged.length === 0
    ? ['signed', 'with the account\'s API key']
    : ['forged', `${forged.map(item => `#${item.callbackId}`).join(', ')} hashed with a wrong API key, the rest with the account's`]
  return {
    method: 'POST',
    route,
    url: `${base}${route}`,
    init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: voximplantBody(items) },
    shown: [['batch', `${items.length} item${items.length === 1 ? '' : 's'}: ${listed.join(', ')}`], signing]
  }
}

function prepare (base: string, sample: Sample): Outgoing {
  return sample.provider === 'edis' ? prepareEdis(base, sample) : prepareVoximplant(base, sample)
}

interface Outcome {
  /** The answer's status; undefined when none came. */
  status?: number
  asExpected: boolean
}

/** Sends one sample, prints what was sent and answered, and says whether it went as expected. */
async function deliver (base: string, sample: Sample): Promise<Outcome> {
  const { method, route, url, init, shown } = prepare(base, sample)
  console.log(`\n(${sample.label}) ${method} ${route}: ${sample.description}`)
  for (const [label, text] of shown) console.log(`    ${label.padEnd(9)}${text}`)

  const eventsBefore = eventsReceived
  let status: number
  try {
    const response = await fetch(url, init)
    status = response.status
    console.log(`    answer   ${status} ${await response.text()}`)
  } catch (error) {
    console.log(`    answer   none: ${error instanceof Error ? error.message : String(error)}`)
    return { asExpected: false }
  }
  const events = eventsReceived - eventsBefore
  if (events === 0) console.log('    handler  not called')

  const { expected } = sample
  const asExpected = status === expected.status && events === expected.events
  const verdict = asExpected ? 'as expected' : `UNEXPECTED: wanted ${expected.status} and ${expected.events} event(s)`
  console.log(`    result   ${status}, ${events} event(s): ${verdict}`)
  return { status, asExpected }
}

function printCurlLines (base: string): void {
  const url = `${base}${ROUTES.edis}`
  // A second VPS id, so these do not repeat the ids the samples already delivered.
  const kvm = 'kvm_234567_890123'
  const auth = `-u "${USERNAME}:$EDIS_CALLBACK_PW"`
  console.log(`\nServing on ${base}${ROUTES.edis} and ${base}${ROUTES.voximplant}. Try them from another shell:`)
  if (password === BUILT_IN_PASSWORD) {
    console.log(`\n  export EDIS_CALLBACK_PW='${BUILT_IN_PASSWORD}'   # the built-in demo password`)
  } else {
    console.log('\n  # with EDIS_CALLBACK_PW set, in that shell too, to the password the demo was started with')
  }
  console.log('\n  # POST, form encoded, HTTP Basic credentials')
  console.log(`  curl -i ${auth} --data 'kvm=${kvm}&details=Traffic+usage+reached+80%25&trigger_value=80' ${url}`)
  console.log('\n  # POST as the EDIS docs send it: raw spaces and a bare %')
  console.log(`  curl -i ${auth} --data 'kvm=${kvm}' --data 'details=Traffic usage reached 100%' --data 'trigger_value=100' ${url}`)
  console.log('\n  # GET, the fields in the query (hook set with callback_method=get)')
  console.log(`  curl -i ${auth} '${url}?kvm=${kvm}&details=Traffic+usage+reached+90%25&trigger_value=90'`)

  // The next id of the account's sequence: a handler that drops repeated event ids would take one
  // the samples used for a retry.
  const callbackId = 1 + Math.max(...SAMPLES.flatMap(sample => sample.provider === 'voximplant' ? sample.items.map(item => item.callbackId) : []))
  const body = voximplantBody([{ type: 'min_balance', callbackId, balance: 3.7 }])
  // The line carries the hash, never the key or salt, so it is safe to print whatever they are.
  const signedWith = secretFromEnvironment ? 'the API key and salt the demo was started with' : 'the built-in demo API key and salt'
  console.log(`\n  # Voximplant: a one-item min_balance batch (#${callbackId}), its hash made with ${signedWith}`)
  console.log(`  curl -i -H 'content-type: application/json' --data '${body}' ${base}${ROUTES.voximplant}`)
}

/**
 * The commands that make the providers call this app (docs/providers.md, "Setting up the providers"). They
 * must reach it: PUBLIC_URL (a tunnel's or the deployment's address) replaces the local one.
 */
function printSetupCommands (base: string): void {
  const publicBase = (process.env.PUBLIC_URL ?? base).replace(/\/+$/, '')
  console.log(`\nTo have EDIS and Voximplant call ${publicBase} (${process.env.PUBLIC_URL === undefined ? 'which they cannot reach from outside: set PUBLIC_URL to the address they can' : 'PUBLIC_URL'}):`)
  console.log('\n  export EDIS_EMAIL=you@example.com EDIS_PASSWORD=...   # your EDIS client-area login')
  console.log(`  EDIS_CALLBACK_PW=... npx provider-callbacks edis hooks set --url ${publicBase}${ROUTES.edis} --trigger 80,90,100 --callback-user ${USERNAME}`)
  console.log(`  EDIS_CALLBACK_PW=... npx provider-callbacks edis hooks demo --url ${publicBase}${ROUTES.edis} --callback-user ${USERNAME}`)
  console.log('  npx provider-callbacks edis hooks remove   # when done: removes the hooks edis-hooks.json records')
  console.log(`\n  npx provider-callbacks voximplant webhook set --credentials voximplant-key.json --url ${publicBase}${ROUTES.voximplant}`)
  console.log('  # prints a new salt once: start the app with it as VOX_SALT, and VOX_API_KEY the account\'s API key')
  console.log('\nCtrl-C to stop.')
}

async function main (): Promise<void> {
  const once = process.argv.includes('--once')
  // --telemetry: the OpenTelemetry SDK (a devDependency here), and what it got printed after the samples.
  const telemetry = process.argv.includes('--telemetry') ? (await import('./telemetry.js')).demoTelemetry() : undefined
  const app = await buildApp(telemetry?.options)
  const base = await listen(app)
  console.log(`Callbacks on ${base}: EDIS at ${ROUTES.edis} (user '${USERNAME}', allowed from ${HOST} and ::1), ` +
    `Voximplant at ${ROUTES.voximplant} (account ${ACCOUNT_ID}, API key ${MASKED}, salt ${MASKED})`)

  let accepted = 0
  let rejected = 0
  const unexpected: string[] = []
  // One at a time, so each block's handler lines belong to it.
  for (const sample of SAMPLES) {
    const { status, asExpected } = await deliver(base, sample)
    if (status === 200) accepted++
    else if (status !== undefined) rejected++
    if (!asExpected) unexpected.push(sample.label)
  }

  console.log('')
  if (unexpected.length === 0) {
    console.log(`${SAMPLES.length} deliveries: ${accepted} accepted, ${rejected} rejected as expected`)
  } else {
    const which = unexpected.map(label => `(${label})`).join(' ')
    console.log(`${SAMPLES.length} deliveries: ${accepted} accepted, ${rejected} rejected; NOT as expected: ${which}`)
  }

  await telemetry?.print()
  if (!await showInbox()) unexpected.push('inbox')

  // A demo whose samples went wrong is not worth serving: stop, and say so in the exit code.
  if (once || unexpected.length > 0) {
    await app.close()
    process.exitCode = unexpected.length === 0 ? 0 : 1
    return
  }

  printCurlLines(base)
  printSetupCommands(base)
  const stop = (): void => {
    console.log('\nStopping.')
    app.close().then(() => process.exit(0), (error: unknown) => {
      console.error(error)
      process.exit(1)
    })
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

/**
 * The inbox, when a Redis is reachable (REDIS_URL, or 127.0.0.1:6379): an app that stores each
 * callback in a BullMQ queue of its own and answers at once, with a handler that fails its first
 * run; the worker retries it and it succeeds. Without a Redis this part is skipped, and says so.
 * Whether it went as expected.
 */
async function showInbox (): Promise<boolean> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const where = new URL(url).host
  const { Redis } = await import('ioredis')
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  probe.on('error', () => {})
  const up = await probe.connect().then(async () => await probe.ping(), () => undefined)
  probe.disconnect()
  console.log('')
  if (up === undefined) {
    console.log(`Inbox: SKIPPED, no Redis at ${where} (start one, or set REDIS_URL, to see events stored, retried and run)`)
    return true
  }
  const connection = new Redis(url, { maxRetriesPerRequest: null })
  connection.on('error', () => {})
  const name = `provider-callbacks-demo-${randomUUID()}`
  const inbox = bullmqInbox({ connection, name, attempts: 3, backoff: { type: 'fixed', delay: 500 } })
  const app = Fastify()
  let runs = 0
  let succeeded!: () => void
  const done = new Promise<void>(resolve => { succeeded = resolve })
  await app.register(providerCallbacks, {
    voximplant: { secret: voximplantSecret },
    inbox,
    handlers: {
      'min-balance': async event => {
        runs++
        if (runs === 1) {
          console.log(`  worker, run 1 of ${event.id}: the handler throws "ledger unreachable"; BullMQ retries it in 500 ms`)
          throw new Error('ledger unreachable')
        }
        console.log(`  worker, run ${runs} of ${event.id}: the handler succeeds`)
        succeeded()
      }
    }
  })
  try {
    const item = voximplantCallback('min_balance', { account_id: ACCOUNT_ID }, voximplantSecret)
    console.log(`Inbox on Redis at ${where} (BullMQ queue ${name}):`)
    const answer = await app.inject({ method: 'POST', url: ROUTES.voximplant, headers: { 'content-type': 'application/json' }, payload: { callbacks: [item] } })
    console.log(`  POST ${ROUTES.voximplant} min_balance -> ${answer.statusCode}: answered once Redis stored it, whatever the handler does`)
    const timeout = new Promise<'timeout'>(resolve => setTimeout(resolve, 30_000, 'timeout').unref())
    const ended = await Promise.race([done, timeout])
    const asExpected = answer.statusCode === 200 && ended !== 'timeout' && runs === 2
    console.log(asExpected ? '  the event failed once, was retried, and succeeded: run exactly once to success' : '  NOT as expected: the event did not succeed on its retry')
    return asExpected
  } finally {
    await app.close()
    const queue = new (await import('bullmq')).Queue(name, { connection })
    await queue.obliterate({ force: true })
    await queue.close()
    // The received stream and the claim protocol's keys.
    const keys = await connection.keys(`bull:${name}:provider-callbacks:*`)
    if (keys.length > 0) await connection.del(...keys)
    connection.disconnect()
  }
}

await main()
