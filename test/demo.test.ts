// The demo (npm run demo) as a newcomer runs it: after its samples it serves, and prints the
// commands that set the providers up to call the URL it serves (PUBLIC_URL's when set: not tested).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { TYPESCRIPT_NODE_ARGS } from './helpers.js'

// One child process with the TypeScript loader's start-up: room for a busy machine.
t.setTimeout(120_000)

t.test('the demo prints the setup commands for the URL it serves', async t => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(EDIS_|VOX_|PUBLIC_URL)/.test(name)))
  const child = spawn(process.execPath, [...TYPESCRIPT_NODE_ARGS, 'example/demo.ts'], { env: { ...env, PORT: '0' } })
  let stdout = ''
  child.stdout.setEncoding('utf8')
  const served = new Promise<void>(resolve => {
    child.stdout.on('data', (text: string) => {
      stdout += text
      if (stdout.includes('Ctrl-C to stop.')) resolve()
    })
  })
  const closed = once(child, 'close')
  await Promise.race([served, closed])
  child.kill('SIGTERM')
  await closed
  const local = /^Serving on (http:\/\/127\.0\.0\.1:\d+)\/callbacks\/edis /m.exec(stdout)?.[1]
  t.ok(local, 'it served')
  const base = String(local)
  t.match(stdout, `To have EDIS and Voximplant call ${base} (which they cannot reach from outside: set PUBLIC_URL to the address they can):`)
  t.match(stdout, `npx provider-callbacks edis hooks set --url ${base}/callbacks/edis --trigger 80,90,100 --callback-user hook\n`)
  t.match(stdout, `npx provider-callbacks edis hooks demo --url ${base}/callbacks/edis --callback-user hook\n`)
  t.match(stdout, `npx provider-callbacks voximplant webhook set --credentials voximplant-key.json --url ${base}/callbacks/voximplant\n`)
})

t.test('the demo with --telemetry prints the span and the metric points of each event under the SDK', async t => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(EDIS_|VOX_|PUBLIC_URL|REDIS_URL)/.test(name)))
  // No inbox part: an unreachable REDIS_URL makes the demo skip it, which is not what this test is about.
  const child = spawn(process.execPath, [...TYPESCRIPT_NODE_ARGS, 'example/demo.ts', '--once', '--telemetry'], { env: { ...env, PORT: '0', REDIS_URL: 'redis://127.0.0.1:1' } })
  let stdout = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (text: string) => { stdout += text })
  const [code] = await once(child, 'close')
  t.equal(code, 0, 'every sample answered as expected')
  const spans = Number(/^Telemetry: (\d+) spans$/m.exec(stdout)?.[1])
  const lines = stdout.split('\n').filter(line => line.startsWith('  process '))
  t.equal(lines.length, spans, 'a line per span')
  t.ok(lines.some(line => /^ {2}process edis {2}traffic-threshold {2}edis:\S+:80 {2}outcome delivered /.test(line)), 'an EDIS event\'s span')
  t.ok(lines.some(line => /^ {2}process voximplant {2}min-balance {2}voximplant:\d+:\d+ {2}outcome delivered /.test(line)), 'a Voximplant event\'s span')
  t.match(stdout, /messaging\.client\.consumed\.messages \{[^\n]*"provider_callbacks\.outcome":"delivered"\}: \d+/)
  t.match(stdout, /provider_callbacks\.requests\.refused \{"messaging\.destination\.name":"edis","http\.response\.status_code":401,"error\.type":"FST_PROVIDER_CALLBACKS_UNAUTHORIZED"\}: 1/)
  t.notMatch(stdout, 'demo-only-not-secret', 'the built-in password is never printed')
})
