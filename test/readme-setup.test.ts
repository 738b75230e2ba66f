// docs/providers.md, "Setting up the providers": every command of its sh blocks marked <!-- readme-setup -->,
// run as written (in this process, through main()) against the fake EDIS and Voximplant APIs, in a
// folder of its own (the state file and the key file are the working folder's), and its ts block
// likewise. A `NAME=…` is a secret the reader fills in: here, the fake account's. Only the hosts
// differ from what a reader runs: EDIS_SESSION_URL, EDIS_API_URL and VOX_API_URL name the fakes,
// and the code's fetch is routed to them.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { main } from '../lib/cli/index.js'
import { FakeEdis, FakeVoximplant } from './fake-providers.js'

const section = readFileSync(new URL('../docs/providers.md', import.meta.url), 'utf8')
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

/** The section's marked sh blocks' commands: `\` continuations joined, comments and blank lines left out. */
function commands (text: string): string[] {
  const blocks = [...text.matchAll(/^<!-- readme-setup -->\n```sh\n([\s\S]*?)^```$/gm)].map(match => String(match[1]))
  return blocks.flatMap(block => block.replace(/\\\n\s*/g, ' ').split('\n'))
    .map(line => line.replace(/(^|\s)#.*$/, '').trim())
    .filter(line => line !== '')
}

/** A command's words, split as sh splits these (no quotes or expansions are used in the page's). */
function words (line: string): string[] {
  if (/["'`$\\|;&<>()]/.test(line)) throw new Error(`docs/providers.md's command needs more of a shell than this test has: ${line}`)
  return line.split(/\s+/)
}

const ACCOUNT = { email: 'you@example.com', password: 'the edis pw', kvms: ['kvm_123456_789012', 'kvm_234567_890123'] }
const SECRETS: Record<string, string> = { EDIS_PASSWORD: ACCOUNT.password, EDIS_CALLBACK_PW: 'the callback pw' }

t.test('docs/providers.md\'s setup commands, top to bottom, against the fake APIs', async t => {
  const lines = commands(section)
  t.ok(lines.length >= 5, 'the page has its commands')
  t.same(commands(readme), [], 'README has none of its own, which this test would not run')
  const edis = await new FakeEdis(ACCOUNT).start(t)
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const voximplant = await new FakeVoximplant(publicKey, 1234567).start(t)
  const dir = mkdtempSync(join(tmpdir(), 'readme-setup-'))
  writeFileSync(join(dir, 'voximplant-key.json'), JSON.stringify({
    account_email: 'svc@example.voximplant.com', account_id: 1234567, key_id: 'key-1', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  }))
  const before = process.cwd()
  process.chdir(dir)
  t.teardown(() => { process.chdir(before) })

  const shell: Record<string, string> = { EDIS_SESSION_URL: edis.base, EDIS_API_URL: `${edis.base}/host/{api_host}`, VOX_API_URL: voximplant.base }
  for (const line of lines) {
    const parts = words(line)
    const exported = parts[0] === 'export'
    const env = exported ? shell : { ...shell }
    if (exported) parts.shift()
    while (/^[A-Z_]+=/.test(parts[0] ?? '')) {
      const [name = '', value = ''] = String(parts.shift()).split(/=(.*)/)
      env[name] = value === '…' ? String(SECRETS[name]) : value
    }
    if (exported) {
      t.same(parts, [], `${line}: only exports`)
      continue
    }
    t.same(parts.slice(0, 2), ['npx', 'provider-callbacks'], `${line}: runs the command line`)
    let stdout = ''
    let stderr = ''
    const code = await main(parts.slice(2), { stdout: { write: text => { stdout += text } }, stderr: { write: text => { stderr += text } }, env })
    if (code !== 0) t.comment(stdout + stderr)
    t.equal(code, 0, `${line}: exit 0`)
    t.equal(stderr, '', `${line}: nothing on stderr`)
    for (const secret of Object.values(SECRETS)) t.notMatch(stdout, secret, `${line}: no secret printed`)

    const [provider, group, command] = parts.slice(2)
    const url = parts[parts.indexOf('--url') + 1]
    const hooks = [...edis.hooks.values()]
    if (`${provider} ${group} ${command}` === 'edis hooks set') {
      const triggers = String(parts[parts.indexOf('--trigger') + 1]).split(',')
      t.same(hooks.map(h => `${h.kvm}@${h.fields.trigger_value}`).sort(), ACCOUNT.kvms.flatMap(kvm => triggers.map(p => `${kvm}@${p}`)).sort(), 'a hook per KVM and trigger')
      t.ok(hooks.every(h => h.fields.callback_url === url && h.fields.callback_user === 'hook' && h.fields.callback_pw === SECRETS.EDIS_CALLBACK_PW), 'to the URL, with the credentials')
      t.equal((JSON.parse(readFileSync('edis-hooks.json', 'utf8')) as { hooks: unknown[] }).hooks.length, hooks.length, 'recorded in edis-hooks.json')
    } else if (`${provider} ${group} ${command}` === 'edis hooks demo') {
      t.equal(hooks.filter(h => h.fields.trigger_value === 'demo').length, ACCOUNT.kvms.length, 'a demo call asked for each KVM')
    } else if (`${provider} ${group} ${command}` === 'edis hooks remove') {
      t.same(hooks.filter(h => h.fields.trigger_value !== 'demo'), [], 'the recorded hooks are gone')
      t.same((JSON.parse(readFileSync('edis-hooks.json', 'utf8')) as { hooks: unknown[] }).hooks, [])
    } else if (`${provider} ${group} ${command}` === 'voximplant webhook set') {
      t.equal(voximplant.account.callback_url, url, 'the callback URL set')
      t.match(stdout, `salt: ${String(voximplant.account.callback_salt)}\n`, 'the new salt printed, once')
    } else {
      t.same(`${provider} ${group} ${command}`, 'voximplant webhook show', 'a command this test knows')
      t.match(stdout, `callback_url: ${String(voximplant.account.callback_url)}\ncallback_salt: set\n`)
    }
  }
})

t.test('docs/providers.md\'s setup code, run as written against the fake APIs (the documented hosts routed to them)', async t => {
  const block = /<!-- readme-check: provision -->\n```ts\n([\s\S]*?)^```$/m.exec(section)?.[1]
  t.ok(block, 'the page has its code')
  const edis = await new FakeEdis(ACCOUNT).start(t)
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const voximplant = await new FakeVoximplant(publicKey, 1234567).start(t)
  const dir = mkdtempSync(join(tmpdir(), 'readme-setup-code-'))
  writeFileSync(join(dir, 'voximplant-key.json'), JSON.stringify({ account_id: 1234567, key_id: 'key-1', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }))
  const file = join(dir, 'provision.mts')
  writeFileSync(file, String(block).replace("from 'fastify-provider-callbacks'", `from ${JSON.stringify(pathToFileURL(join(process.cwd(), 'lib/index.ts')).href)}`))

  // What the block reads, and where its calls go: the hosts it does not name, routed to the fakes.
  const saved = { fetch: globalThis.fetch, log: console.log, cwd: process.cwd(), env: { ...process.env } }
  const printed: unknown[][] = []
  globalThis.fetch = async (input, init) => await saved.fetch(String(input)
    .replace(/^https:\/\/session\.edisglobal\.com\//, `${edis.base}/`)
    .replace(/^https:\/\/(\d+\.edisglobal\.com)\//, `${edis.base}/host/$1/`)
    .replace(/^https:\/\/api\.voximplant\.com\//, `${voximplant.base}/`), init)
  console.log = (...args: unknown[]) => { printed.push(args) }
  Object.assign(process.env, { EDIS_EMAIL: ACCOUNT.email, EDIS_PASSWORD: ACCOUNT.password, EDIS_CALLBACK_PW: SECRETS.EDIS_CALLBACK_PW })
  process.chdir(dir)
  try {
    await import(pathToFileURL(file).href)
  } finally {
    globalThis.fetch = saved.fetch
    console.log = saved.log
    process.chdir(saved.cwd)
    process.env = saved.env
  }
  t.same([...edis.hooks.values()].map(h => `${h.kvm}@${h.fields.trigger_value}`).sort(), ACCOUNT.kvms.flatMap(kvm => ['80', '90', '100'].map(p => `${kvm}@${p}`)).sort(), 'a hook per KVM and percentage')
  t.match(voximplant.account, { callback_url: 'https://your.host/callbacks/voximplant', callback_salt: /^[\w-]{32}$/ })
  t.same(printed, [[6, true, { accountId: 1234567, callbackUrl: 'https://your.host/callbacks/voximplant', saltSet: true }]], 'what it prints')
})
