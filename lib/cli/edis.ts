// `provider-callbacks edis hooks set|remove|demo`: EDIS Global's traffic hooks through its API,
// what `set` created kept in a state file (EDIS has no list of hooks to ask).
import { parseArgs } from 'node:util'
import { edisHooks, type EdisHooks } from '../provision/edis.js'
import { ProvisionError } from '../provision/http.js'
import { MASK, NAME, choice, integer, parsed, plural, secret, targetUrl, UsageError, type CliIO, type Command } from './common.js'
import { runSubcommand } from './subcommands.js'
import { DEFAULT_STATE, readState, writeState, type RecordedHook } from './edis-state.js'

const ACCOUNT_OPTIONS = `  --email EMAIL              the client-area login (env EDIS_EMAIL; required)
  --password PASSWORD        its password (env EDIS_PASSWORD); never printed
  --password-file FILE       the password, read from FILE
  --session-url URL          where AUTH sessions are made (env EDIS_SESSION_URL;
                             default https://session.edisglobal.com)
  --api-url URL              send every KVM's calls to URL instead of https://<api_host>; an
                             {api_host} in URL is replaced by it (env EDIS_API_URL)
  --timeout MS               how long to wait for each answer (default 30000)
  -h, --help                 this help`

const HOOK_OPTIONS = `  --url URL                  where EDIS calls: your route, http or https (required),
                             e.g. https://example.com/callbacks/edis
  --method post|get          how EDIS calls (default post)
  --callback-user USER       the hook's callback_user (env EDIS_CALLBACK_USER): what your
                             route's edis.credentials accepts
  --callback-password PW     its callback_pw (env EDIS_CALLBACK_PW); never printed`

const STATE_OPTION = `  --state FILE               the state file (default ./${DEFAULT_STATE})`

const USAGE = `Usage: ${NAME} edis hooks set|remove|demo [options]

Sets EDIS Global's traffic hooks up through its Management API, which has no list of hooks:
'set' records what it creates in a state file, and 'remove' removes what the file records.

Commands:
  edis hooks set      creates a hook per KVM and trigger, those the state file lacks
  edis hooks remove   removes the hooks the state file records
  edis hooks demo     asks EDIS for its test call to a URL, at once

'${NAME} edis hooks <command> --help' for its options.
`

const SET_USAGE = `Usage: ${NAME} edis hooks set --url URL --trigger N [options]

Creates an EDIS Global traffic hook for each KVM and trigger, and records each in the state file.
Run again, it creates only what the file lacks; a hook the file has for the same KVM and trigger
with another URL, method or user is replaced (EDIS cannot change one): the new one is set, then
the old one removed.

Options:
  --trigger N[,N...]         the traffic usage in percent that fires a hook: one hook each,
                             e.g. 80,90,100, or the flag repeated (required)
  --kvm ID                   a KVM VPS id, the flag repeated for several (default: every KVM
                             of the account)
${HOOK_OPTIONS}
${STATE_OPTION}
${ACCOUNT_OPTIONS}
`

const REMOVE_USAGE = `Usage: ${NAME} edis hooks remove [options]

Removes the hooks the state file records, and drops each from it once EDIS has removed it; or the
one hook --kvm and --id name.

Options:
  --kvm ID                   only this KVM's hooks, the flag repeated for several
  --trigger N[,N...]         only the hooks of these triggers
  --id N                     the hook of this id (EDIS's hook_id) on the one --kvm, recorded or not
${STATE_OPTION}
${ACCOUNT_OPTIONS}
`

const DEMO_USAGE = `Usage: ${NAME} edis hooks demo --url URL [options]

Asks EDIS for its test call (trigger_value=demo) to URL, once for each KVM: see that your route
receives it. Nothing is recorded in the state file.

Options:
  --kvm ID                   a KVM VPS id, the flag repeated for several (default: every KVM
                             of the account)
${HOOK_OPTIONS}
${ACCOUNT_OPTIONS}
`

const ACCOUNT_FLAGS = ['help', 'email', 'password', 'password-file', 'session-url', 'api-url', 'timeout']
// Each command takes only its own flags: a --state given to demo (which records nothing) or an --id
// given to set would otherwise be ignored without a word.
const SUBCOMMANDS = {
  set: { usage: SET_USAGE, flags: ['url', 'trigger', 'kvm', 'method', 'callback-user', 'callback-password', 'state'], run: set },
  remove: { usage: REMOVE_USAGE, flags: ['kvm', 'trigger', 'id', 'state'], run: remove },
  demo: { usage: DEMO_USAGE, flags: ['url', 'kvm', 'method', 'callback-user', 'callback-password'], run: demo }
}

export const edis: Command = {
  help: '  edis hooks        EDIS Global\'s traffic hooks through its API: set, remove, demo',
  run: async (argv, io) => await runSubcommand({ path: 'edis hooks', usage: USAGE, subcommands: SUBCOMMANDS, shared: ACCOUNT_FLAGS, parse: args }, argv, io)
}

function args (args: string[], usage: string) {
  return parsed(() => parseArgs({
    args,
    options: {
      help: { type: 'boolean', short: 'h' },
      url: { type: 'string' },
      trigger: { type: 'string', multiple: true },
      kvm: { type: 'string', multiple: true },
      id: { type: 'string' },
      method: { type: 'string' },
      'callback-user': { type: 'string' },
      'callback-password': { type: 'string' },
      state: { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      'password-file': { type: 'string' },
      'session-url': { type: 'string' },
      'api-url': { type: 'string' },
      timeout: { type: 'string' }
    },
    strict: true,
    allowPositionals: false
  }).values, usage)
}

type Values = ReturnType<typeof args>

function client (values: Values, io: CliIO, usage: string): EdisHooks {
  const email = values.email ?? io.env.EDIS_EMAIL
  if (email === undefined || email === '') throw new UsageError('missing the account: pass --email or set EDIS_EMAIL', usage)
  const password = secret(values.password, values['password-file'], io.env.EDIS_PASSWORD, 'the password', usage)
  if (password === undefined || password === '') throw new UsageError('missing the password: pass --password or --password-file, or set EDIS_PASSWORD', usage)
  // The documented hosts unless a flag or the environment names others (a proxy, a test's fake).
  const sessionUrl = targetUrl(values['session-url'] ?? io.env.EDIS_SESSION_URL ?? 'https://session.edisglobal.com', usage).href
  const apiUrl = values['api-url'] ?? io.env.EDIS_API_URL ?? 'https://{api_host}'
  return edisHooks({
    email,
    password,
    timeout: integer(values.timeout ?? '30000', '--timeout', 1, usage),
    sessionUrl,
    apiUrl: apiHost => apiUrl.replaceAll('{api_host}', apiHost)
  })
}

function triggers (values: Values, usage: string): number[] | undefined {
  if (values.trigger === undefined) return undefined
  const all = values.trigger.flatMap(text => text.split(',')).map(text => text.trim())
  return [...new Set(all.map(text => {
    if (!/^\d{1,3}$/.test(text)) throw new UsageError(`--trigger must be percentages (integers), got '${text}'`, usage)
    return Number(text)
  }))]
}

interface HookTarget { url: string, method: 'post' | 'get', credentials: { username: string, password: string } | undefined }

function hookTarget (values: Values, io: CliIO, usage: string): HookTarget {
  const url = targetUrl(values.url, usage).href
  const method = choice(values.method ?? 'post', '--method', ['post', 'get'], usage)
  const username = values['callback-user'] ?? io.env.EDIS_CALLBACK_USER
  const password = values['callback-password'] ?? io.env.EDIS_CALLBACK_PW
  if ((username === undefined) !== (password === undefined)) {
    throw new UsageError('--callback-user and --callback-password go together (or EDIS_CALLBACK_USER and EDIS_CALLBACK_PW)', usage)
  }
  return { url, method, credentials: username === undefined || password === undefined ? undefined : { username, password } }
}

function describe (target: HookTarget): string {
  return `${target.url} (${target.method.toUpperCase()}, ${target.credentials === undefined ? 'without credentials' : `as ${target.credentials.username}:${MASK}`})`
}

async function kvmsOf (values: Values, hooks: EdisHooks): Promise<string[]> {
  if (values.kvm !== undefined) return [...new Set(values.kvm)]
  const all = await hooks.kvms()
  if (all.length === 0) throw new ProvisionError('EDIS AUTH: the session lists no KVM: the account has none, or its API access is off', 'EDIS AUTH')
  return all
}

async function set (values: Values, io: CliIO, usage: string): Promise<number> {
  const wanted = triggers(values, usage)
  if (wanted === undefined) throw new UsageError('missing --trigger: the percentages, e.g. 80,90,100', usage)
  const target = hookTarget(values, io, usage)
  const statePath = values.state ?? DEFAULT_STATE
  let state = readState(statePath, usage)
  const hooks = client(values, io, usage)
  const kvms = await kvmsOf(values, hooks)
  io.stdout.write(`edis: hooks of ${kvms.join(', ')} at ${plural(wanted.length, 'trigger')} (${wanted.join(', ')}%) to ${describe(target)}\n`)
  const same = (hook: RecordedHook): boolean =>
    hook.url === target.url && hook.method === target.method && hook.user === target.credentials?.username
  for (const kvm of kvms) {
    for (const trigger of wanted) {
      const recorded = state.filter(hook => hook.kvm === kvm && hook.trigger === trigger)
      const kept = recorded.find(same)
      if (kept !== undefined) {
        io.stdout.write(`kept ${kvm} at ${trigger}%: hook ${kept.hookId}, already set\n`)
        continue
      }
      const { hookId } = await hooks.set({ kvm, trigger, url: target.url, method: target.method, ...(target.credentials === undefined ? {} : { credentials: target.credentials }) })
      const hook: RecordedHook = { kvm, trigger, hookId, url: target.url, method: target.method, setAt: new Date().toISOString() }
      if (target.credentials !== undefined) hook.user = target.credentials.username
      state = [...state, hook]
      writeState(statePath, state)
      io.stdout.write(`set ${kvm} at ${trigger}%: hook ${hookId}\n`)
      for (const old of recorded) {
        await hooks.remove(old)
        state = state.filter(hook => hook !== old)
        writeState(statePath, state)
        io.stdout.write(`removed ${kvm} at ${trigger}%: hook ${old.hookId}, replaced (it called ${old.url})\n`)
      }
    }
  }
  io.stdout.write(`state: ${statePath} (${plural(state.length, 'hook')})\n`)
  return 0
}

async function remove (values: Values, io: CliIO, usage: string): Promise<number> {
  const statePath = values.state ?? DEFAULT_STATE
  let state = readState(statePath, usage)
  const only = triggers(values, usage)
  let targets: Array<{ kvm: string, hookId: number, trigger?: number }>
  if (values.id !== undefined) {
    const [kvm, ...more] = values.kvm ?? []
    if (kvm === undefined || more.length > 0) throw new UsageError('--id goes with one --kvm', usage)
    if (only !== undefined) throw new UsageError('--id and --trigger do not go together', usage)
    targets = [{ kvm, hookId: integer(values.id, '--id', 0, usage) }]
  } else {
    targets = state.filter(hook => (values.kvm === undefined || values.kvm.includes(hook.kvm)) && (only === undefined || only.includes(hook.trigger)))
  }
  const hooks = client(values, io, usage)
  if (targets.length === 0) io.stdout.write(`edis: no hooks to remove: ${statePath} records ${state.length === 0 ? 'none' : 'none of those'}\n`)
  for (const target of targets) {
    await hooks.remove(target)
    const before = state.length
    state = state.filter(hook => !(hook.kvm === target.kvm && hook.hookId === target.hookId))
    if (state.length !== before) writeState(statePath, state)
    io.stdout.write(`removed ${target.kvm}${target.trigger === undefined ? '' : ` at ${target.trigger}%`}: hook ${target.hookId}\n`)
  }
  io.stdout.write(`state: ${statePath} (${plural(state.length, 'hook')})\n`)
  return 0
}

async function demo (values: Values, io: CliIO, usage: string): Promise<number> {
  const target = hookTarget(values, io, usage)
  const hooks = client(values, io, usage)
  const kvms = await kvmsOf(values, hooks)
  io.stdout.write(`edis: a demo call of ${kvms.join(', ')} to ${describe(target)}\n`)
  for (const kvm of kvms) {
    const { hookId } = await hooks.demo({ kvm, url: target.url, method: target.method, ...(target.credentials === undefined ? {} : { credentials: target.credentials }) })
    io.stdout.write(`asked ${kvm}: EDIS calls ${target.url} with trigger_value=demo${hookId === undefined ? '' : ` (hook ${hookId}; if EDIS keeps it, '${NAME} edis hooks remove --kvm ${kvm} --id ${hookId}' removes it)`}\n`)
  }
  return 0
}
