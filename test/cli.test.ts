// The provider-callbacks CLI against real listening servers: the plugin in a Fastify app (what a
// user points it at), and a bare node:http server that records the bytes. Four runs are child
// processes, for what only a process shows (the exit code the entry script sets, stdout and stderr
// as the process's streams, the environment read from process.env); the rest call main() in this
// process, which is the same code without a process's start-up (the TypeScript loader's, most of a
// second each: nineteen of them made this file the suite's slowest).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import { main } from '../lib/cli/index.js'
import providerCallbacks, { type AnyProviderCallbackEvent } from '../lib/index.js'
import { voximplantHash } from '../lib/testing.js'
import { TYPESCRIPT_NODE_ARGS } from './helpers.js'

// The four child processes each start the TypeScript loader: a few seconds of CPU, which with
// other work on the machine can take most of tap's 30 s default. This budget still ends a hang.
t.setTimeout(120_000)

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version
const EDIS_PW = 'pa$$ word:with colon'
const VOX = { apiKey: 'eec36d6c-a0eb-46b5-a006-1c2b65343bac', salt: 'mySecretSalt' }
const SUCCESS = '{"status":"success","message":"Callback received successfully."}'
// A handler fails for this account's callbacks whose id is a multiple of 5.
const FLAKY_ACCOUNT = 4242

// The child gets this process's environment (tap's coverage hooks travel in NODE_OPTIONS), without
// any secret a developer may have exported.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(EDIS_CALLBACK_|VOX_)/.test(name)))

interface Run { code: number | null, stdout: string, stderr: string }

async function cli (args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [...TYPESCRIPT_NODE_ARGS, 'test/fixtures/cli.ts', ...args], { env: { ...baseEnv, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const [code] = await once(child, 'close') as [number | null]
  return { code, stdout, stderr }
}

// The plugin, as a user runs it: EDIS with credentials, Voximplant with a secret.
const events: AnyProviderCallbackEvent[] = []
const app = Fastify()
await app.register(providerCallbacks, {
  idempotency: false,
  edis: { credentials: { username: 'hook', password: EDIS_PW } },
  voximplant: { secret: VOX }
})
app.providerCallbacks.onAny(event => { events.push(event) })
app.providerCallbacks.on('min-balance', event => {
  if (event.payload.account_id === FLAKY_ACCOUNT && event.payload.callback_id % 5 === 0) throw new Error('flaky handler')
})
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/callbacks`

// What went on the wire, by path. /hang never answers.
interface Recorded { method: string, url: string, headers: IncomingHttpHeaders, body: Buffer }
const recorded: Recorded[] = []
const wire = createServer((request, response) => {
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  request.on('end', () => {
    recorded.push({ method: String(request.method), url: String(request.url), headers: request.headers, body: Buffer.concat(chunks) })
    if (request.url !== '/hang') response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"success"}')
  })
})
wire.listen(0, '127.0.0.1')
await once(wire, 'listening')
const wireBase = `http://127.0.0.1:${(wire.address() as AddressInfo).port}`
const onWire = (path: string): Recorded[] => recorded.filter(request => request.url.split('?')[0] === path)

t.teardown(async () => {
  wire.closeAllConnections()
  wire.close()
  await app.close()
})

const eventsOf = (predicate: (payload: Record<string, unknown>) => boolean): AnyProviderCallbackEvent[] =>
  events.filter(event => predicate(event.payload as Record<string, unknown>))

// The runs in a process, started together so that their start-ups overlap; awaited where they are tested.
const EDIS_ENV = { EDIS_CALLBACK_USER: 'hook', EDIS_CALLBACK_PW: EDIS_PW }
const processes = {
  help: cli([]),
  unknownCommand: cli(['frobnicate']),
  wrongPassword: cli(['send', 'edis', '--url', `${base}/edis`, '--kvm', 'kvm_1_2', '--user', 'hook', '--password', 'guess']),
  credentialsFromEnv: cli(['send', 'edis', '--url', `${base}/edis`, '--kvm', 'kvm_1_3', '--trigger', '100', '--raw'], EDIS_ENV)
}

// In the test's own process: the same code as the CLI runs, without a process's start-up time.
async function inProcess (args: string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await main(args, { stdout: { write: text => { stdout += text } }, stderr: { write: text => { stderr += text } }, env })
  return { code, stdout, stderr }
}

t.test('--help: the top level, and each command with every flag, its default and env var', async t => {
  const [none, long, short, send, edis, voximplant, version] = await Promise.all([
    processes.help, inProcess(['--help']), inProcess(['-h']), inProcess(['send', '--help']),
    inProcess(['send', 'edis', '--help']), inProcess(['send', 'voximplant', '-h']), inProcess(['--version'])
  ])
  for (const run of [none, long, short, send, edis, voximplant, version]) {
    t.equal(run.code, 0)
    t.equal(run.stderr, '')
  }
  t.match(none.stdout, /^Usage: provider-callbacks <command> \[options\]\n/)
  t.match(none.stdout, /send edis .*\n.*send voximplant /)
  t.match(none.stdout, /Exit codes: 0 every answer was 2xx; 1 .*\n2 the command line was wrong/)
  t.equal(long.stdout, none.stdout, 'no arguments is --help')
  t.equal(short.stdout, none.stdout)
  t.equal(send.stdout, none.stdout)
  t.equal(version.stdout, `${VERSION}\n`)

  t.match(edis.stdout, /^Usage: provider-callbacks send edis --url URL \[options\]\n/)
  for (const text of [
    '--url URL', '--kvm ID', '(default kvm_123456_789012)', '--trigger N|demo', '(default 80)', '--details TEXT',
    '(default "Traffic usage reached <trigger>%")', '--user USER', '(env EDIS_CALLBACK_USER)', '--password PASSWORD',
    '(env EDIS_CALLBACK_PW', '--credentials basic|fields', '(default basic)', '--method post|get', '(default post)',
    '--raw', 'a space as %20', 'a bare % is left alone', '--timeout MS', '(default 10000)', '-h, --help'
  ]) t.ok(edis.stdout.includes(text), `edis help: ${text}`)

  t.match(voximplant.stdout, /^Usage: provider-callbacks send voximplant --url URL --type TYPE \[options\]\n/)
  for (const text of [
    '--url URL', '--type TYPE', 'min_balance', '--account ID', '(env VOX_ACCOUNT_ID; default 1234567)', '--api-key KEY',
    'env VOX_API_KEY', '--salt SALT', '(env VOX_SALT; default none)', '--count N', '(default 1)', '--batch N',
    '--callback-id N', '--timeout MS', '(default 10000)', '-h, --help'
  ]) t.ok(voximplant.stdout.includes(text), `voximplant help: ${text}`)
})

t.test('usage errors: the problem and the usage on stderr, exit 2', async t => {
  const edis = ['send', 'edis', '--url', `${base}/edis`]
  const vox = ['send', 'voximplant', '--url', `${base}/voximplant`, '--type', 'min_balance', '--api-key', 'k']
  const TYPES = /: one of min_balance, account_is_frozen, .*, /
  const cases: Array<[string, string[], string | RegExp, 'top' | 'edis' | 'voximplant', Record<string, string>?]> = [
    ['unknown command', ['frobnicate'], "unknown command 'frobnicate'", 'top'],
    ['unknown --type', [...vox, '--type', 'min_balanse'], new RegExp(`unknown --type 'min_balanse'${TYPES.source}`), 'voximplant'],
    ['unknown top-level flag', ['--bogus'], "unknown command '--bogus'", 'top'],
    ['send without a provider', ['send'], 'send what? send edis or send voximplant', 'top'],
    ['unknown provider', ['send', 'sms'], "unknown provider 'sms': edis or voximplant", 'top'],
    ['unknown flag', [...edis, '--bogus'], "Unknown option '--bogus'", 'edis'],
    ['flag without its value', ['send', 'edis', '--url'], "Option '--url <value>' argument missing", 'edis'],
    ['a positional', [...edis, 'extra'], "Unexpected argument 'extra'", 'edis'],
    ['missing --url', ['send', 'edis'], 'missing --url', 'edis'],
    ['invalid URL', ['send', 'edis', '--url', 'not a url'], "--url must be an http or https URL, got 'not a url'", 'edis'],
    ['not http', ['send', 'voximplant', '--url', 'ftp://example.com/x'], "--url must be an http or https URL, got 'ftp://example.com/x'", 'voximplant'],
    ['credentials in the URL', ['send', 'edis', '--url', 'ftp://hook:pw@127.0.0.1/x'], '--url must not hold a user or password', 'edis'],
    ['bad --trigger', [...edis, '--trigger', '80%'], "--trigger must be a percentage (an integer) or demo, got '80%'", 'edis'],
    ['bad --method', [...edis, '--method', 'put'], "--method must be post or get, got 'put'", 'edis'],
    ['bad --credentials', [...edis, '--credentials', 'header'], "--credentials must be basic or fields, got 'header'", 'edis'],
    ['bad --timeout', [...edis, '--timeout', '0'], "--timeout must be an integer of at least 1, got '0'", 'edis'],
    ['--user alone', [...edis, '--user', 'hook'], '--user and --password go together (or EDIS_CALLBACK_USER and EDIS_CALLBACK_PW)', 'edis'],
    ['EDIS_CALLBACK_PW alone', edis, '--user and --password go together', 'edis', { EDIS_CALLBACK_PW: 'secret' }],
    ['non-integer --count', [...vox, '--count', '2.5'], "--count must be an integer of at least 1, got '2.5'", 'voximplant'],
    ['zero --batch', [...vox, '--batch', '0'], "--batch must be an integer of at least 1, got '0'", 'voximplant'],
    ['non-integer --account', [...vox, '--account', 'abc'], "--account (or VOX_ACCOUNT_ID) must be an integer of at least 0, got 'abc'", 'voximplant'],
    ['non-integer VOX_ACCOUNT_ID', vox, "--account (or VOX_ACCOUNT_ID) must be an integer of at least 0, got '12x'", 'voximplant', { VOX_ACCOUNT_ID: '12x' }],
    ['negative --callback-id', [...vox, '--callback-id=-1'], "--callback-id must be an integer of at least 0, got '-1'", 'voximplant'],
    ['missing --type', ['send', 'voximplant', '--url', `${base}/voximplant`, '--api-key', 'k'], new RegExp(`missing --type${TYPES.source}`), 'voximplant'],
    ['missing API key', ['send', 'voximplant', '--url', `${base}/voximplant`, '--type', 'min_balance'], 'missing the API key: pass --api-key or set VOX_API_KEY', 'voximplant'],
    ['empty API key', [...vox, '--api-key', ''], 'missing the API key: pass --api-key or set VOX_API_KEY', 'voximplant']
  ]
  const usage = { top: 'Usage: provider-callbacks <command>', edis: 'Usage: provider-callbacks send edis ', voximplant: 'Usage: provider-callbacks send voximplant ' }
  const runs = await Promise.all(cases.map(([, args, , , env]) => inProcess(args, env)))
  t.same(await processes.unknownCommand, runs[0], 'a process gets the same: exit 2, the usage on stderr, nothing on stdout')
  cases.forEach(([name, , message, kind], i) => {
    const { code, stdout, stderr } = runs[i]!
    t.equal(code, 2, `${name}: exit 2`)
    t.equal(stdout, '', `${name}: nothing on stdout`)
    const [first, blank, usageLine] = stderr.split('\n')
    t.match(first, typeof message === 'string' ? `provider-callbacks: ${message}` : message, `${name}: says what is wrong`)
    t.equal(blank, '')
    t.ok(usageLine?.startsWith(usage[kind]), `${name}: then the ${kind} usage`)
  })
})

t.test('edis, to the plugin', async t => {
  const [basic, wrong, fromEnv, get] = await Promise.all([
    inProcess(['send', 'edis', '--url', `${base}/edis`, '--kvm', 'kvm_1_1', '--user', 'hook', '--password', EDIS_PW]),
    processes.wrongPassword,
    processes.credentialsFromEnv,
    inProcess(['send', 'edis', '--url', `${base}/edis`, '--kvm', 'kvm_1_4', '--trigger', 'demo', '--details', 'Test 1%', '--method', 'GET', '--credentials', 'fields'], EDIS_ENV)
  ])

  t.test('a form POST with Basic credentials', async t => {
    t.equal(basic.code, 0)
    t.equal(basic.stderr, '')
    t.equal(basic.stdout, [
      `edis: POST ${base}/edis as hook:**** (Authorization: Basic), kvm kvm_1_1, trigger_value 80`,
      `POST ${base}/edis -> 200 ${SUCCESS}`,
      ''
    ].join('\n'))
    t.match(eventsOf(p => p.kvm === 'kvm_1_1'), [{ name: 'traffic-threshold', payload: { kvm: 'kvm_1_1', details: 'Traffic usage reached 80%', trigger_value: 80 } }])
  })

  t.test('a wrong password is a 401, exit 1', async t => {
    t.equal(wrong.code, 1)
    t.match(wrong.stdout, `POST ${base}/edis -> 401 {"status":"error","message":"Missing or invalid callback credentials.","code":"FST_PROVIDER_CALLBACKS_UNAUTHORIZED"}\n`)
    t.notMatch(wrong.stdout + wrong.stderr, 'guess', 'the password is not printed')
    t.same(eventsOf(p => p.kvm === 'kvm_1_2'), [])
  })

  t.test('credentials from the environment, a raw body', async t => {
    t.equal(fromEnv.code, 0)
    t.match(fromEnv.stdout, 'as hook:**** (Authorization: Basic)')
    t.match(eventsOf(p => p.kvm === 'kvm_1_3'), [{ payload: { details: 'Traffic usage reached 100%', trigger_value: 100 } }])
  })

  t.test('a GET with --credentials fields and trigger demo', async t => {
    t.equal(get.code, 0)
    const [header, line] = get.stdout.split('\n')
    t.equal(header, `edis: GET ${base}/edis as hook:**** (callback_user/callback_pw fields), kvm kvm_1_4, trigger_value demo`)
    t.match(line, `GET ${base}/edis?kvm=kvm_1_4&details=Test+1%25&`, 'the query as a form encodes it')
    t.match(line, /&callback_user=hook&callback_pw=\*\*\*\*(&|\s)/, 'the password field is masked')
    t.ok(line?.endsWith(` -> 200 ${SUCCESS}`))
    t.match(eventsOf(p => p.kvm === 'kvm_1_4'), [{ payload: { details: 'Test 1%', trigger_value: 'demo' } }])
  })

  for (const run of [basic, wrong, fromEnv, get]) t.notMatch(run.stdout + run.stderr, 'pa$$', 'the password is never printed')
})

t.test('edis, on the wire: exactly what EDIS sends', async t => {
  const [raw, fields, rawGet] = await Promise.all([
    inProcess(['send', 'edis', '--url', `${wireBase}/raw`, '--trigger', '100', '--raw', '--user', 'hook', '--password', EDIS_PW]),
    inProcess(['send', 'edis', '--url', `${wireBase}/fields`, '--credentials', 'fields', '--user', 'hook', '--password', EDIS_PW]),
    inProcess(['send', 'edis', '--url', `${wireBase}/raw-get?token=a%20b`, '--method', 'get', '--raw', '--details', 'Über 90% & more'])
  ])
  t.same([raw.code, fields.code, rawGet.code], [0, 0, 0])
  t.equal(raw.stdout.split('\n')[1], `POST ${wireBase}/raw -> 200 {"status":"success"}`)

  const [post] = onWire('/raw')
  const body = 'kvm=kvm_123456_789012&details=Traffic usage reached 100%&trigger_value=100'
  t.equal(post?.method, 'POST')
  t.equal(post?.body.toString('latin1'), body, 'raw spaces and a bare %, as the docs\' curl')
  t.same(post?.headers, {
    'content-type': 'application/x-www-form-urlencoded',
    'content-length': String(body.length),
    authorization: 'Basic ' + Buffer.from(`hook:${EDIS_PW}`).toString('base64'),
    'user-agent': `provider-callbacks/${VERSION}`,
    host: new URL(wireBase).host,
    connection: 'keep-alive'
  }, 'only these headers')

  const [form] = onWire('/fields')
  t.same(Object.fromEntries(new URLSearchParams(form?.body.toString())), {
    kvm: 'kvm_123456_789012', details: 'Traffic usage reached 80%', trigger_value: '80', callback_user: 'hook', callback_pw: EDIS_PW
  }, 'the credentials as form fields')
  t.match(form?.body.toString(), 'callback_pw=pa%24%24+word%3Awith+colon', 'form-encoded')
  t.equal(form?.headers.authorization, undefined, 'no Authorization header with fields')

  const [get] = onWire('/raw-get')
  t.equal(get?.url, '/raw-get?token=a%20b&kvm=kvm_123456_789012&details=%C3%9Cber%2090%%20&%20more&trigger_value=80',
    'a raw GET: the URL\'s own query kept, spaces and non-ASCII encoded, % and & left alone')
  t.same(Object.keys(get?.headers ?? {}).sort(), ['connection', 'host', 'user-agent'], 'a GET has no body headers')
  t.match(rawGet.stdout, `GET ${wireBase}/raw-get?token=a%20b&kvm=`)
})

t.test('voximplant', async t => {
  const env = { VOX_API_KEY: VOX.apiKey, VOX_SALT: VOX.salt }
  const url = `${base}/voximplant`
  const [one, flags, wrong, many, flaky, wired] = await Promise.all([
    inProcess(['send', 'voximplant', '--url', url, '--type', 'min_balance'], { ...env, VOX_ACCOUNT_ID: '1001' }),
    inProcess(['send', 'voximplant', '--url', url, '--type', 'sms_inbound', '--account', '1002', '--api-key', VOX.apiKey, '--salt', VOX.salt,
      '--callback-id', '5000', '--count', '3', '--batch', '2']),
    inProcess(['send', 'voximplant', '--url', url, '--type', 'min_balance', '--account', '1003', '--api-key', 'not-the-key']),
    inProcess(['send', 'voximplant', '--url', url, '--type', 'min_balance', '--account', '1004', '--count', '250', '--batch', '10'], env),
    inProcess(['send', 'voximplant', '--url', url, '--type', 'min_balance', '--account', String(FLAKY_ACCOUNT), '--callback-id', '1', '--count', '30'], env),
    inProcess(['send', 'voximplant', '--url', `${wireBase}/vox`, '--type', 'account_is_frozen', '--callback-id', '7', '--count', '2', '--batch', '2'],
      { VOX_API_KEY: VOX.apiKey })
  ])

  t.test('one signed callback, secrets and account from the environment', async t => {
    t.equal(one.code, 0)
    t.equal(one.stderr, '')
    t.equal(one.stdout, [
      `voximplant: POST ${url} as account 1001 (API key ****, salt ****), 1 min_balance callback in 1 request`,
      `POST ${url} -> 200 ${SUCCESS}`,
      ''
    ].join('\n'))
    t.match(eventsOf(p => p.account_id === 1001), [{ name: 'min-balance', payload: { type: 'min_balance', account_id: 1001, min_balance: { is_min_credit: false } } }])
  })

  t.test('--callback-id, --count and --batch', async t => {
    t.equal(flags.code, 0)
    t.equal(flags.stdout, [
      `voximplant: POST ${url} as account 1002 (API key ****, salt ****), 3 sms_inbound callbacks in 2 requests`,
      `POST ${url} -> 200 ${SUCCESS}`,
      `POST ${url} -> 200 ${SUCCESS}`,
      '3 callbacks in 2 requests: 2 x 200',
      ''
    ].join('\n'))
    t.same(eventsOf(p => p.account_id === 1002).map(event => event.id), ['voximplant:1002:5000', 'voximplant:1002:5001', 'voximplant:1002:5002'])
  })

  t.test('a wrong API key is a 401, exit 1', async t => {
    t.equal(wrong.code, 1)
    t.equal(wrong.stdout, [
      `voximplant: POST ${url} as account 1003 (API key ****, no salt), 1 min_balance callback in 1 request`,
      `POST ${url} -> 401 {"status":"error","message":"Missing or invalid callback credentials.","code":"FST_PROVIDER_CALLBACKS_UNAUTHORIZED"}`,
      ''
    ].join('\n'))
    t.same(eventsOf(p => p.account_id === 1003), [])
  })

  t.test('250 callbacks in batches of 10: progress and a summary', async t => {
    t.equal(many.code, 0)
    t.equal(many.stdout, [
      `voximplant: POST ${url} as account 1004 (API key ****, salt ****), 250 min_balance callbacks in 25 requests`,
      '250 callbacks in 25 requests: 25 x 200',
      ''
    ].join('\n'), 'no line per request')
    t.equal(many.stderr, [30, 50, 80, 100, 130, 150, 180, 200, 230, 250].map(sent => `sent ${sent}/250 callbacks (${sent * 100 / 250}%)\n`).join(''), 'progress every 10%')
    const received = eventsOf(p => p.account_id === 1004)
    t.equal(received.length, 250)
    t.equal(new Set(received.map(event => event.id)).size, 250, 'every callback_id fresh')
  })

  t.test('a long run lists its failures only', async t => {
    t.equal(flaky.code, 1)
    const lines = flaky.stdout.trim().split('\n')
    t.equal(lines.length, 8, 'the header, 6 failures, the summary')
    t.match(lines.slice(1, 7), Array(6).fill(new RegExp(`^POST ${url} -> 500 \\{"status":"error",.*"code":"FST_PROVIDER_CALLBACKS_HANDLER_FAILED"\\}$`)))
    t.equal(lines[7], '30 callbacks in 30 requests: 24 x 200, 6 x 500')
    t.match(flaky.stderr, 'sent 30/30 callbacks (100%)')
  })

  t.test('on the wire: a JSON batch, signed', async t => {
    t.equal(wired.code, 0)
    const [request] = onWire('/vox')
    const body = String(request?.body)
    t.same(request?.headers, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': `provider-callbacks/${VERSION}`,
      host: new URL(wireBase).host,
      connection: 'keep-alive'
    })
    const { callbacks } = JSON.parse(body) as { callbacks: Array<Record<string, unknown>> }
    t.match(callbacks, [
      { callback_id: 7, type: 'account_is_frozen', account_id: 1234567, hash: voximplantHash({ accountId: 1234567, apiKey: VOX.apiKey, callbackId: 7 }), account_is_frozen: {} },
      { callback_id: 8, hash: voximplantHash({ accountId: 1234567, apiKey: VOX.apiKey, callbackId: 8 }) }
    ])
  })

  for (const run of [one, flags, wrong, many, flaky, wired]) {
    t.notMatch(run.stdout + run.stderr, VOX.apiKey, 'the API key is never printed')
    t.notMatch(run.stdout + run.stderr, VOX.salt, 'the salt is never printed')
  }
})

t.test('an unreachable or silent URL: a clear message, exit 1', async t => {
  const [refused, tls, silent] = await Promise.all([
    inProcess(['send', 'edis', '--url', 'http://127.0.0.1:1/callbacks/edis']),
    inProcess(['send', 'voximplant', '--url', 'https://127.0.0.1:1/callbacks/voximplant', '--type', 'min_balance', '--api-key', 'k', '--count', '2']),
    inProcess(['send', 'edis', '--url', `${wireBase}/hang`, '--timeout', '300'])
  ])
  t.same([refused.code, tls.code, silent.code], [1, 1, 1])
  t.equal(refused.stderr, 'cannot reach http://127.0.0.1:1/callbacks/edis: ECONNREFUSED\n')
  t.equal(tls.stderr, 'cannot reach https://127.0.0.1:1/callbacks/voximplant: ECONNREFUSED\n', 'the run stops at the first')
  t.equal(silent.stderr, `cannot reach ${wireBase}/hang: no answer within 300 ms\n`)
  t.notMatch(refused.stdout + tls.stdout + silent.stdout, '->', 'no answer line')
})

t.test('main() in process: an error that is not a usage error propagates', async t => {
  const closed = { write: (): never => { throw new Error('stdout closed') } }
  await t.rejects(main(['--help'], { stdout: closed, stderr: closed, env: {} }), { message: 'stdout closed' })
})
