/**
 * A runnable tour of the EDIS route. `npm run demo` starts an app with the plugin, sends it over real
 * HTTP the callbacks EDIS sends (and a few it must refuse), prints what happened to each, then keeps
 * serving so you can try it with curl. `npm run demo -- --once` stops after the samples and exits 1
 * if any answer was not the expected one, so it doubles as a smoke test.
 *
 * Environment: PORT (default 3000; a free port if that one is busy), EDIS_CALLBACK_PW (the hook's
 * password; a built-in demo one otherwise).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import providerCallbacks from '../lib/index.js'

const HOST = '127.0.0.1'
// The plugin's defaults: prefix '/callbacks' and edis.path '/edis'.
const ROUTE = '/callbacks/edis'
const USERNAME = 'hook'
// Anyone can read this one here, so it is only good for trying the demo. A password passed in
// EDIS_CALLBACK_PW is treated as a real secret: the demo never prints it.
const BUILT_IN_PASSWORD = 'demo-only-not-secret'
const password = process.env.EDIS_CALLBACK_PW || BUILT_IN_PASSWORD
const MASKED = '****'

/** How a sample carries the hook's credentials. */
type Auth = 'basic' | 'fields' | 'wrong-password'

interface Sample {
  label: string
  description: string
  method: 'POST' | 'GET'
  auth: Auth
  /** The form text exactly as it goes on the wire: the body of a POST, the query of a GET. */
  form: string
  expected: number
}

const SAMPLES: readonly Sample[] = [
  {
    label: 'a',
    description: 'canonical form encoding, HTTP Basic credentials',
    method: 'POST',
    auth: 'basic',
    form: 'kvm=kvm_123456_789012&details=Traffic+usage+reached+80%25&trigger_value=80',
    expected: 200
  },
  {
    label: 'b',
    description: 'as the EDIS docs\' curl sends it: raw spaces and a bare %, credentials as fields',
    method: 'POST',
    auth: 'fields',
    form: 'kvm=kvm_123456_789012&details=Traffic usage reached 100%&trigger_value=100',
    expected: 200
  },
  {
    label: 'c',
    description: 'GET variant (hook set with callback_method=get), a test delivery',
    method: 'GET',
    auth: 'basic',
    form: 'kvm=kvm_123456_789012&details=Traffic+usage+reached+80%25&trigger_value=demo',
    expected: 200
  },
  {
    label: 'd',
    description: 'forged: the right username with a wrong password',
    method: 'POST',
    auth: 'wrong-password',
    form: 'kvm=kvm_123456_789012&details=Traffic+usage+reached+80%25&trigger_value=80',
    expected: 401
  },
  {
    label: 'e',
    description: 'malformed: no kvm, trigger_value is not a number',
    method: 'POST',
    auth: 'basic',
    form: 'details=Traffic+usage+reached+80%25&trigger_value=abc',
    expected: 400
  },
  {
    label: 'f',
    description: 'a repeated field: two trigger_values, so which one is meant?',
    method: 'POST',
    auth: 'basic',
    form: 'kvm=kvm_123456_789012&trigger_value=80&trigger_value=90',
    expected: 400
  }
]

// Counted by the handler, so each delivery can say whether the handlers ran for it.
let eventsReceived = 0

async function buildApp (): Promise<FastifyInstance> {
  // 'warn' keeps the output readable: the plugin logs refused callbacks at info.
  const app = Fastify({ logger: { level: 'warn' } })
  await app.register(providerCallbacks, {
    edis: {
      credentials: { username: USERNAME, password },
      allowedIps: ['127.0.0.1', '::1']
    },
    handlers: {
      'traffic-threshold': async event => {
        eventsReceived++
        console.log(`    handler  got '${event.name}', id ${event.id}`)
        console.log(`             payload ${JSON.stringify(event.payload)}`)
      }
    }
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
  url: string
  init: RequestInit
  /** What may be printed about the credentials and the form: the password masked. */
  shownAuth: string
  shownForm: string
}

function basicHeader (user: string, pw: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pw}`, 'utf8').toString('base64')
}

function prepare (base: string, sample: Sample): Outgoing {
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
    return { url: `${base}${ROUTE}?${form}`, init: { method: 'GET', headers }, shownAuth, shownForm }
  }
  headers['content-type'] = 'application/x-www-form-urlencoded'
  // Bytes, not URLSearchParams (which would re-encode): the raw spaces and bare % of sample (b)
  // must reach the server exactly as EDIS's own curl example sends them.
  const body = new TextEncoder().encode(form)
  return { url: `${base}${ROUTE}`, init: { method: 'POST', headers, body }, shownAuth, shownForm }
}

interface Outcome {
  /** The answer's status; undefined when none came. */
  status?: number
  asExpected: boolean
}

/** Sends one sample, prints what was sent and answered, and says whether it went as expected. */
async function deliver (base: string, sample: Sample): Promise<Outcome> {
  const { url, init, shownAuth, shownForm } = prepare(base, sample)
  console.log(`\n(${sample.label}) ${sample.method} ${ROUTE}: ${sample.description}`)
  console.log(`    auth     ${shownAuth}`)
  console.log(`    ${sample.method === 'GET' ? 'query' : 'body '}    ${shownForm}`)

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

  // Accepted means exactly one event reached the handler; refused means none did.
  const expectedEvents = sample.expected === 200 ? 1 : 0
  const asExpected = status === sample.expected && events === expectedEvents
  const verdict = asExpected ? 'as expected' : `UNEXPECTED: wanted ${sample.expected} and ${expectedEvents} event(s)`
  console.log(`    result   ${status}, ${events} event(s): ${verdict}`)
  return { status, asExpected }
}

function printCurlLines (base: string): void {
  const url = `${base}${ROUTE}`
  // A second VPS id, so these do not repeat the ids the samples already delivered.
  const kvm = 'kvm_234567_890123'
  const auth = `-u "${USERNAME}:$EDIS_CALLBACK_PW"`
  console.log(`\nServing on ${url}. Try it from another shell:`)
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
  console.log('\nCtrl-C to stop.')
}

async function main (): Promise<void> {
  const once = process.argv.includes('--once')
  const app = await buildApp()
  const base = await listen(app)
  console.log(`EDIS callbacks on ${base}${ROUTE} (user '${USERNAME}', allowed from ${HOST} and ::1)`)

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

  // A demo whose samples went wrong is not worth serving: stop, and say so in the exit code.
  if (once || unexpected.length > 0) {
    await app.close()
    process.exitCode = unexpected.length === 0 ? 0 : 1
    return
  }

  printCurlLines(base)
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

await main()
