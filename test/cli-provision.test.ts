// `edis hooks` and `voximplant webhook` against the fake provider APIs: the state file across runs,
// secrets from flags, files and the environment and never printed, help and exit codes. Three runs
// are child processes (the default state file in the working folder, the exit code a process
// sets, the environment read from process.env); the rest call main() in this process.
import { spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t, { type Test } from 'tap'
import { main } from '../lib/cli/index.js'
import { closedPort, FakeEdis, FakeVoximplant } from './fake-providers.js'
import { TYPESCRIPT_NODE_ARGS } from './helpers.js'

t.setTimeout(120_000)

const ACCOUNT = { email: 'ops@example.com', password: 'edis pw&=+ 1', kvms: ['kvm_111_1', 'kvm_222_2'] }
const [KVM1, KVM2] = ACCOUNT.kvms as [string, string]
const CALLBACK_PW = 'callback pw 77'
const ROUTE = 'https://example.com/callbacks/edis'
const dir = mkdtempSync(join(tmpdir(), 'cli-provision-'))

const edisFake = await new FakeEdis(ACCOUNT).start(t)
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const KEY = { account_id: 7654321, key_id: 'key-1', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }
const KEY_FILE = join(dir, 'vox-key.json')
writeFileSync(KEY_FILE, JSON.stringify(KEY))
const voxFake = await new FakeVoximplant(publicKey, KEY.account_id).start(t)

const EDIS_ENV = { EDIS_EMAIL: ACCOUNT.email, EDIS_PASSWORD: ACCOUNT.password, EDIS_SESSION_URL: edisFake.base, EDIS_API_URL: `${edisFake.base}/host/{api_host}` }
const VOX_ENV = { VOX_CREDENTIALS: KEY_FILE, VOX_API_URL: voxFake.base }
const SECRETS = [ACCOUNT.password, encodeURIComponent(ACCOUNT.password), CALLBACK_PW, 'PRIVATE KEY']

interface Run { code: number | null, stdout: string, stderr: string }
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(EDIS_|VOX_)/.test(name)))

async function cli (args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  const child = spawn(process.execPath, [...TYPESCRIPT_NODE_ARGS, resolve('test/fixtures/cli.ts'), ...args], { env: { ...baseEnv, ...env }, cwd })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const [code] = await once(child, 'close') as [number | null]
  return { code, stdout, stderr }
}

async function inProcess (args: string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await main(args, { stdout: { write: text => { stdout += text } }, stderr: { write: text => { stderr += text } }, env })
  return { code, stdout, stderr }
}

function noSecrets (t: Test, ...runs: Run[]): void {
  for (const run of runs) for (const secret of SECRETS) t.notMatch(run.stdout + run.stderr, secret, 'no secret printed')
}

const hooksOnEdis = (): string[] => [...edisFake.hooks.values()].map(h => `${h.kvm}@${h.fields.trigger_value}->${h.fields.callback_url}`).sort()

t.test('edis hooks set twice, then remove: the state file across processes', async t => {
  const cwd = mkdtempSync(join(dir, 'work-'))
  const setArgs = ['edis', 'hooks', 'set', '--url', ROUTE, '--trigger', '80,90', '--trigger', '100', '--callback-user', 'hook']
  const env = { ...EDIS_ENV, EDIS_CALLBACK_PW: CALLBACK_PW }
  const first = await cli(setArgs, env, cwd)
  t.equal(first.code, 0, first.stderr)
  t.equal(first.stderr, '')
  const lines = first.stdout.trim().split('\n')
  t.equal(lines[0], `edis: hooks of ${KVM1}, ${KVM2} at 3 triggers (80, 90, 100%) to ${ROUTE} (POST, as hook:****)`, 'every KVM of the account')
  t.match(lines.slice(1, 7), [`set ${KVM1} at 80%: hook `, `set ${KVM1} at 90%: hook `, `set ${KVM1} at 100%: hook `, `set ${KVM2} at 80%: hook `, `set ${KVM2} at 90%: hook `, `set ${KVM2} at 100%: hook `])
  t.equal(lines[7], 'state: edis-hooks.json (6 hooks)')
  t.equal(hooksOnEdis().length, 6)
  t.ok([...edisFake.hooks.values()].every(h => h.fields.callback_user === 'hook' && h.fields.callback_pw === CALLBACK_PW), 'the hook credentials from flag and env')

  const state = JSON.parse(readFileSync(join(cwd, 'edis-hooks.json'), 'utf8')) as { version: number, hooks: Array<Record<string, unknown>> }
  t.equal(state.version, 1)
  t.match(state.hooks[0], { kvm: KVM1, trigger: 80, hookId: Number, url: ROUTE, method: 'post', user: 'hook', setAt: String })
  t.notMatch(JSON.stringify(state), CALLBACK_PW, 'no password in the state file')

  const again = await cli(setArgs, env, cwd)
  t.equal(again.code, 0)
  t.match(again.stdout, `kept ${KVM1} at 80%: hook ${String(state.hooks[0]?.hookId)}, already set\n`)
  t.notMatch(again.stdout, /^set /m, 'nothing created twice')
  t.equal(hooksOnEdis().length, 6)

  const removed = await inProcess(['edis', 'hooks', 'remove', '--state', join(cwd, 'edis-hooks.json'), '--kvm', KVM2, '--trigger', '90'], EDIS_ENV)
  t.equal(removed.code, 0)
  t.match(removed.stdout, new RegExp(`^removed ${KVM2} at 90%: hook \\d+\\nstate: .*edis-hooks.json \\(5 hooks\\)\\n$`))
  const all = await inProcess(['edis', 'hooks', 'remove', '--state', join(cwd, 'edis-hooks.json')], EDIS_ENV)
  t.equal(all.code, 0)
  t.equal(all.stdout.split('\n').filter(line => line.startsWith('removed ')).length, 5)
  t.same(hooksOnEdis(), [], 'EDIS has none left')
  t.same((JSON.parse(readFileSync(join(cwd, 'edis-hooks.json'), 'utf8')) as { hooks: unknown[] }).hooks, [])
  const none = await inProcess(['edis', 'hooks', 'remove', '--state', join(cwd, 'edis-hooks.json')], EDIS_ENV)
  writeFileSync(join(cwd, 'other.json'), JSON.stringify({ version: 1, hooks: [{ kvm: KVM1, trigger: 80, hookId: 1, url: ROUTE, method: 'post', setAt: '2026-01-01T00:00:00.000Z' }] }))
  const notThose = await inProcess(['edis', 'hooks', 'remove', '--state', join(cwd, 'other.json'), '--kvm', KVM2], EDIS_ENV)
  t.equal(notThose.stdout.split('\n')[0], `edis: no hooks to remove: ${join(cwd, 'other.json')} records none of those`)
  t.equal(none.stdout, `edis: no hooks to remove: ${join(cwd, 'edis-hooks.json')} records none\nstate: ${join(cwd, 'edis-hooks.json')} (0 hooks)\n`)
  noSecrets(t, first, again, removed, all)
})

t.test('edis hooks set with another URL replaces the recorded hook; a stopped run keeps what it did', async t => {
  const state = join(dir, 'replace.json')
  const args = ['edis', 'hooks', 'set', '--state', state, '--kvm', KVM1, '--trigger', '80', '--email', ACCOUNT.email]
  const passwordFile = join(dir, 'edis-pw')
  writeFileSync(passwordFile, `${ACCOUNT.password}\n`)
  const hosts = ['--session-url', edisFake.base, '--api-url', `${edisFake.base}/host/{api_host}`, '--password-file', passwordFile]
  const first = await inProcess([...args, ...hosts, '--url', ROUTE])
  t.equal(first.code, 0, first.stderr)
  const moved = await inProcess([...args, ...hosts, '--url', 'https://new.example.com/cb', '--method', 'get'])
  t.equal(moved.code, 0)
  const [, set, removed] = moved.stdout.split('\n')
  t.match(set, `set ${KVM1} at 80%: hook `)
  t.match(removed, new RegExp(`^removed ${KVM1} at 80%: hook \\d+, replaced \\(it called ${ROUTE}\\)$`))
  t.same(hooksOnEdis(), [`${KVM1}@80->https://new.example.com/cb`])

  // EDIS refuses the second hook: the first stays recorded, the run exits 1 with EDIS's answer.
  edisFake.answer(`/host/${FakeEdis.apiHost(KVM2)}/kvm/v2/hooks/set`, { status: 500, body: '{"status":"error","message":"internal"}' })
  const partial = await inProcess(['edis', 'hooks', 'set', '--state', state, '--kvm', KVM1, '--kvm', KVM2, '--trigger', '95', '--url', ROUTE], EDIS_ENV)
  t.equal(partial.code, 1)
  t.equal(partial.stderr, `EDIS hooks/set (${KVM2}): HTTP 500: {"status":"error","message":"internal"}\n`)
  const recorded = (JSON.parse(readFileSync(state, 'utf8')) as { hooks: Array<{ kvm: string, trigger: number }> }).hooks.map(h => `${h.kvm}@${h.trigger}`)
  t.same(recorded, [`${KVM1}@80`, `${KVM1}@95`], 'the hook set before the failure is recorded')
  const cleanup = await inProcess(['edis', 'hooks', 'remove', '--state', state], EDIS_ENV)
  t.equal(cleanup.code, 0)
  t.same(hooksOnEdis(), [])
  noSecrets(t, first, moved, partial, cleanup)
})

t.test('edis hooks demo, remove --id, and failures', async t => {
  const demo = await inProcess(['edis', 'hooks', 'demo', '--url', ROUTE, '--kvm', KVM2], EDIS_ENV)
  t.equal(demo.code, 0)
  const id = /hook (\d+);/.exec(demo.stdout)?.[1]
  t.equal(demo.stdout, `edis: a demo call of ${KVM2} to ${ROUTE} (POST, without credentials)\n` +
    `asked ${KVM2}: EDIS calls ${ROUTE} with trigger_value=demo (hook ${String(id)}; if EDIS keeps it, 'provider-callbacks edis hooks remove --kvm ${KVM2} --id ${String(id)}' removes it)\n`)
  t.equal([...edisFake.hooks.values()].at(-1)?.fields.trigger_value, 'demo')
  const byId = await inProcess(['edis', 'hooks', 'remove', '--kvm', KVM2, '--id', String(id), '--state', join(dir, 'none.json')], EDIS_ENV)
  t.equal(byId.code, 0)
  t.equal(byId.stdout.split('\n')[0], `removed ${KVM2}: hook ${String(id)}`)
  t.same(hooksOnEdis(), [])
  edisFake.hookIdAs = 'none'
  const noId = await inProcess(['edis', 'hooks', 'demo', '--url', ROUTE, '--kvm', KVM1, '--callback-user', 'hook', '--callback-password', CALLBACK_PW], EDIS_ENV)
  edisFake.hookIdAs = 'string'
  t.equal(noId.stdout, `edis: a demo call of ${KVM1} to ${ROUTE} (POST, as hook:****)\nasked ${KVM1}: EDIS calls ${ROUTE} with trigger_value=demo\n`)
  t.match([...edisFake.hooks.values()].at(-1)?.fields, { trigger_value: 'demo', callback_user: 'hook', callback_pw: CALLBACK_PW })
  noSecrets(t, demo, noId)

  const wrong = await inProcess(['edis', 'hooks', 'demo', '--url', ROUTE], { ...EDIS_ENV, EDIS_PASSWORD: 'wrong pw' })
  t.equal(wrong.code, 1)
  t.equal(wrong.stderr, 'EDIS AUTH: answered status "error": {"status":"error","message":"Login failed for ops@example.com with pw [REDACTED]"}\n')
  t.notMatch(wrong.stderr, 'wrong')
  const port = await closedPort()
  const down = await inProcess(['edis', 'hooks', 'demo', '--url', ROUTE, '--session-url', `http://127.0.0.1:${port}`], EDIS_ENV)
  t.same([down.code, down.stderr], [1, `EDIS AUTH: cannot reach http://127.0.0.1:${port}: ECONNREFUSED\n`])
  edisFake.answer('/kvm/v2/get/auth', { hang: true })
  const slow = await inProcess(['edis', 'hooks', 'demo', '--url', ROUTE, '--timeout', '150'], EDIS_ENV)
  t.same([slow.code, slow.stderr], [1, 'EDIS AUTH: no answer within 150 ms\n'])

  const empty = await new FakeEdis({ ...ACCOUNT, kvms: [] }).start(t)
  const noKvm = await inProcess(['edis', 'hooks', 'set', '--url', ROUTE, '--trigger', '80', '--state', join(dir, 'empty.json')],
    { ...EDIS_ENV, EDIS_SESSION_URL: empty.base })
  t.same([noKvm.code, noKvm.stdout, noKvm.stderr], [1, '', 'EDIS AUTH: the session lists no KVM: the account has none, or its API access is off\n'])

  // No host named: the documented one, which this machine need not reach within a millisecond.
  const documented = await inProcess(['edis', 'hooks', 'demo', '--url', ROUTE, '--timeout', '1'], { EDIS_EMAIL: ACCOUNT.email, EDIS_PASSWORD: ACCOUNT.password })
  t.equal(documented.code, 1)
  t.match(documented.stderr, /^EDIS AUTH: (no answer within 1 ms|cannot reach https:\/\/session\.edisglobal\.com: \w+)\n$/)
  const voxDocumented = await inProcess(['voximplant', 'webhook', 'show', '--timeout', '1'], { VOX_CREDENTIALS: KEY_FILE })
  t.equal(voxDocumented.code, 1)
  t.match(voxDocumented.stderr, /^Voximplant GetAccountInfo: (no answer within 1 ms|cannot reach https:\/\/api\.voximplant\.com: \w+)\n$/)
})

t.test('voximplant webhook show and set: the salt kept, given, or new and printed once', async t => {
  const before = await inProcess(['voximplant', 'webhook', 'show'], VOX_ENV)
  t.equal(before.stdout, 'voximplant: account 7654321\ncallback_url: none\ncallback_salt: none\n')
  const spawned = await cli(['voximplant', 'webhook', 'set', '--url', 'https://example.com/callbacks/voximplant'], { VOX_API_URL: voxFake.base, VOX_CREDENTIALS: KEY_FILE }, dir)
  t.equal(spawned.code, 0, spawned.stderr)
  const salt = String(voxFake.account.callback_salt)
  t.match(salt, /^[\w-]{32}$/)
  t.equal(spawned.stdout, 'voximplant: callback_url set to https://example.com/callbacks/voximplant, a new salt\n' +
    `salt: ${salt}\n(shown once: store it, e.g. as VOX_SALT, where your app reads voximplant.secret.salt)\n`, 'no salt set yet: one generated, printed once')

  const shown = await inProcess(['voximplant', 'webhook', 'show'], VOX_ENV)
  t.equal(shown.stdout, 'voximplant: account 7654321\ncallback_url: https://example.com/callbacks/voximplant\ncallback_salt: set\n')
  t.notMatch(shown.stdout, salt)

  const kept = await inProcess(['voximplant', 'webhook', 'set', '--url', 'https://b.example.com/cb'], VOX_ENV)
  t.equal(kept.stdout, 'voximplant: callback_url set to https://b.example.com/cb, the salt kept\n')
  t.equal(voxFake.account.callback_salt, salt)
  t.same(voxFake.calls.at(-1)?.fields, { cmd: 'SetAccountInfo', callback_url: 'https://b.example.com/cb' })

  const saltFile = join(dir, 'salt')
  writeFileSync(saltFile, 'from-a-file\n')
  const fromFile = await inProcess(['voximplant', 'webhook', 'set', '--url', 'https://b.example.com/cb', '--salt-file', saltFile], VOX_ENV)
  t.equal(fromFile.stdout, 'voximplant: callback_url set to https://b.example.com/cb, the salt given (****)\n')
  t.equal(voxFake.account.callback_salt, 'from-a-file')
  const fromEnv = await inProcess(['voximplant', 'webhook', 'set', '--url', 'https://b.example.com/cb', '--credentials', KEY_FILE], { VOX_API_URL: voxFake.base, VOX_SALT: 'env-salt' })
  t.equal(voxFake.account.callback_salt, 'env-salt')
  const renewed = await inProcess(['voximplant', 'webhook', 'set', '--url', 'https://b.example.com/cb', '--new-salt', '--api-url', voxFake.base], VOX_ENV)
  t.match(renewed.stdout, /a new salt\nsalt: [\w-]{32}\n/)
  t.not(voxFake.account.callback_salt, 'env-salt')
  for (const run of [shown, kept, fromFile, fromEnv, renewed]) t.equal(run.code, 0)
  noSecrets(t, spawned, shown, kept, fromFile, fromEnv)
  for (const run of [kept, fromFile, fromEnv]) t.notMatch(run.stdout, /from-a-file|env-salt/, 'a salt given is not printed')

  voxFake.answer('/platform_api', { body: '{"error":{"code":100,"msg":"Authorization failed"}}' })
  const refused = await inProcess(['voximplant', 'webhook', 'show'], VOX_ENV)
  t.same([refused.code, refused.stdout, refused.stderr], [1, '', 'Voximplant GetAccountInfo: answered error 100 (Authorization failed): {"error":{"code":100,"msg":"Authorization failed"}}\n'])
})

t.test('help for every command, and usage errors: exit 2, the usage on stderr', async t => {
  const helps = await Promise.all([
    inProcess(['--help']), inProcess(['edis']), inProcess(['edis', 'hooks', '--help']), inProcess(['edis', 'hooks', 'set', '--help']),
    inProcess(['edis', 'hooks', 'remove', '-h']), inProcess(['edis', 'hooks', 'demo', '--help']), inProcess(['voximplant', '-h']),
    inProcess(['voximplant', 'webhook']), inProcess(['voximplant', 'webhook', 'show', '--help']), inProcess(['voximplant', 'webhook', 'set', '--help'])
  ])
  for (const run of helps) t.same([run.code, run.stderr], [0, ''])
  const [top, edis, hooks, set, remove, demo, vox, webhook, show, voxSet] = helps.map(run => run.stdout) as string[] & { length: 10 }
  t.match(top, /\n {2}edis hooks .*\n {2}voximplant webhook /)
  t.equal(edis, hooks)
  t.equal(vox, webhook)
  for (const [text, flags] of [
    [set, ['--trigger N[,N...]', '--kvm ID', '--url URL', '--method post|get', '--callback-user USER', '(env EDIS_CALLBACK_USER)', '--callback-password PW', '(env EDIS_CALLBACK_PW)', '--state FILE', '(default ./edis-hooks.json)', '--email EMAIL', '(env EDIS_EMAIL', '--password PASSWORD', '(env EDIS_PASSWORD)', '--password-file FILE', '--session-url URL', '--api-url URL', '--timeout MS', '(default 30000)']],
    [remove, ['--kvm ID', '--trigger N[,N...]', '--id N', '--state FILE', '--email EMAIL']],
    [demo, ['--url URL', '--kvm ID', 'trigger_value=demo', '--email EMAIL']],
    [show, ['--credentials FILE', '(env VOX_CREDENTIALS; required)', '--api-url URL', '(env VOX_API_URL; default https://api.voximplant.com)']],
    [voxSet, ['--url URL', '--salt SALT', '(env VOX_SALT)', '--salt-file FILE', '--new-salt', '1 to 40 characters', 'printed once', '--credentials FILE']]
  ] as const) for (const flag of flags) t.ok(text?.includes(flag), `help has ${flag}`)

  const EMPTY_FILE = join(dir, 'empty-pw')
  writeFileSync(EMPTY_FILE, '\n')
  const before = edisFake.requests.length
  const set_ = ['edis', 'hooks', 'set', '--url', ROUTE, '--trigger', '80']
  const cases: Array<[string[], Record<string, string>, string, string]> = [
    [['edis', 'hook'], {}, "unknown edis command 'hook': edis hooks set|remove|demo", 'edis hooks set|remove|demo'],
    [['edis', 'hooks', 'list'], {}, "unknown command 'edis hooks list': set, remove or demo", 'edis hooks set|remove|demo'],
    [['edis', 'hooks', 'set', '--trigger', '80'], EDIS_ENV, 'missing --url', 'edis hooks set '],
    [['edis', 'hooks', 'set', '--url', ROUTE], EDIS_ENV, 'missing --trigger: the percentages, e.g. 80,90,100', 'edis hooks set '],
    [[...set_, '--trigger', '8o'], EDIS_ENV, "--trigger must be percentages (integers), got '8o'", 'edis hooks set '],
    [[...set_, '--id', '3'], EDIS_ENV, "--id does not go with 'edis hooks set'", 'edis hooks set '],
    [['edis', 'hooks', 'demo', '--url', ROUTE, '--state', 'x.json'], EDIS_ENV, "--state does not go with 'edis hooks demo'", 'edis hooks demo '],
    [set_, { ...EDIS_ENV, EDIS_EMAIL: '' }, 'missing the account: pass --email or set EDIS_EMAIL', 'edis hooks set '],
    [set_, { EDIS_EMAIL: 'a@b', EDIS_PASSWORD: '' }, 'missing the password: pass --password or --password-file, or set EDIS_PASSWORD', 'edis hooks set '],
    [[...set_, '--password', ''], { EDIS_EMAIL: 'a@b' }, 'missing the password: pass --password or --password-file, or set EDIS_PASSWORD', 'edis hooks set '],
    [[...set_, '--password-file', EMPTY_FILE], { EDIS_EMAIL: 'a@b' }, 'missing the password: pass --password or --password-file, or set EDIS_PASSWORD', 'edis hooks set '],
    [[...set_, '--password-file', join(dir, 'nope')], { EDIS_EMAIL: 'a@b' }, `cannot read the password from ${join(dir, 'nope')}: ENOENT`, 'edis hooks set '],
    [[...set_, '--callback-user', 'hook'], EDIS_ENV, '--callback-user and --callback-password go together', 'edis hooks set '],
    [[...set_, '--method', 'put'], EDIS_ENV, "--method must be post or get, got 'put'", 'edis hooks set '],
    [[...set_, '--timeout', '0'], EDIS_ENV, "--timeout must be an integer of at least 1, got '0'", 'edis hooks set '],
    [[...set_, '--state', KEY_FILE], EDIS_ENV, `${KEY_FILE} is not a state file of edis hooks (version 1)`, 'edis hooks set '],
    [[...set_, '--state', join(dir, 'salt')], EDIS_ENV, `${join(dir, 'salt')} is not a state file of edis hooks (version 1)`, 'edis hooks set '],
    [[...set_, '--state', dir], EDIS_ENV, `cannot read the state file ${dir}: EISDIR`, 'edis hooks set '],
    [['edis', 'hooks', 'remove', '--id', '3'], EDIS_ENV, '--id goes with one --kvm', 'edis hooks remove '],
    [['edis', 'hooks', 'remove', '--id', '3', '--kvm', KVM1, '--trigger', '80'], EDIS_ENV, '--id and --trigger do not go together', 'edis hooks remove '],
    [['voximplant', 'hooks'], {}, "unknown voximplant command 'hooks': voximplant webhook show|set", 'voximplant webhook show|set'],
    [['voximplant', 'webhook', 'get'], {}, "unknown command 'voximplant webhook get': show or set", 'voximplant webhook show|set'],
    [['voximplant', 'webhook', 'show'], {}, 'missing the key file: pass --credentials FILE or set VOX_CREDENTIALS', 'voximplant webhook show '],
    [['voximplant', 'webhook', 'show', '--url', ROUTE], VOX_ENV, "--url does not go with 'voximplant webhook show'", 'voximplant webhook show '],
    [['voximplant', 'webhook', 'show', '--credentials', join(dir, 'nope')], {}, `cannot read the Voximplant key file ${join(dir, 'nope')}: ENOENT`, 'voximplant webhook show '],
    [['voximplant', 'webhook', 'set', '--url', ROUTE, '--salt', 'x'.repeat(41)], VOX_ENV, 'the salt must have 1 to 40 characters, it has 41', 'voximplant webhook set '],
    [['voximplant', 'webhook', 'set', '--url', ROUTE, '--salt', 's', '--new-salt'], VOX_ENV, '--new-salt and --salt (or --salt-file) do not go together', 'voximplant webhook set '],
    [['voximplant', 'webhook', 'set', '--url', 'ftp://x'], VOX_ENV, "--url must be an http or https URL, got 'ftp://x'", 'voximplant webhook set ']
  ]
  const runs = await Promise.all(cases.map(async ([args, env]) => await inProcess(args, env)))
  cases.forEach(([args, , message, usage], i) => {
    const run = runs[i]!
    t.equal(run.code, 2, `${args.join(' ')}: exit 2`)
    t.equal(run.stdout, '')
    const [first, blank, usageLine] = run.stderr.split('\n')
    t.match(first, `provider-callbacks: ${message}`, `${args.join(' ')}: ${message}`)
    t.equal(blank, '')
    t.ok(usageLine?.startsWith(`Usage: provider-callbacks ${usage}`), `${args.join(' ')}: then the usage`)
  })
  t.equal(edisFake.requests.length, before, 'a wrong command line calls no API')
})
