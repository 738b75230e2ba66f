// `provider-callbacks voximplant webhook show|set`: the account's callback URL and security salt,
// through the Management API with a service account's key file.
import { parseArgs } from 'node:util'
import { voximplantWebhook, type VoximplantWebhook } from '../provision/voximplant.js'
import { MASK, NAME, integer, parsed, secret, targetUrl, UsageError, type CliIO, type Command } from './common.js'
import { runSubcommand } from './subcommands.js'

const COMMON_OPTIONS = `  --credentials FILE    the service account's key file, JSON with account_id, key_id and
                        private_key (env VOX_CREDENTIALS; required); never printed
  --api-url URL         (env VOX_API_URL; default https://api.voximplant.com)
  --timeout MS          how long to wait for the answer (default 30000)
  -h, --help            this help`

const USAGE = `Usage: ${NAME} voximplant webhook show|set [options]

Reads and sets Voximplant's account webhook (the callback URL and its security salt) through the
Management API, authenticated with a service account's key file.

Commands:
  voximplant webhook show   prints the callback URL, and whether a salt is set
  voximplant webhook set    sets the callback URL and the salt

'${NAME} voximplant webhook <command> --help' for its options.
`

const SHOW_USAGE = `Usage: ${NAME} voximplant webhook show --credentials FILE [options]

Prints the account's callback URL and whether a security salt is set (never the salt).

Options:
${COMMON_OPTIONS}
`

const SET_USAGE = `Usage: ${NAME} voximplant webhook set --credentials FILE --url URL [--salt SALT|--new-salt]

Sets the account's callback URL, and its security salt: the one given, or a new one. Without
either, the salt set is kept, and one is generated when none is. A generated salt is printed once:
store it where your app reads voximplant.secret.salt.

Options:
  --url URL             where Voximplant posts callbacks: your route, http or https (required),
                        e.g. https://example.com/callbacks/voximplant
  --salt SALT           the salt, 1 to 40 characters (env VOX_SALT); never printed
  --salt-file FILE      the salt, read from FILE
  --new-salt            a new salt of 32 random characters, printed once
${COMMON_OPTIONS}
`

const SUBCOMMANDS = {
  show: { usage: SHOW_USAGE, flags: [] as string[], run: show },
  set: { usage: SET_USAGE, flags: ['url', 'salt', 'salt-file', 'new-salt'], run: set }
}
const COMMON_FLAGS = ['help', 'credentials', 'api-url', 'timeout']

export const voximplant: Command = {
  help: '  voximplant webhook   Voximplant\'s account webhook through its API: show, set',
  run: async (argv, io) => await runSubcommand({ path: 'voximplant webhook', usage: USAGE, subcommands: SUBCOMMANDS, shared: COMMON_FLAGS, parse: args }, argv, io)
}

function args (args: string[], usage: string) {
  return parsed(() => parseArgs({
    args,
    options: {
      help: { type: 'boolean', short: 'h' },
      credentials: { type: 'string' },
      'api-url': { type: 'string' },
      timeout: { type: 'string' },
      url: { type: 'string' },
      salt: { type: 'string' },
      'salt-file': { type: 'string' },
      'new-salt': { type: 'boolean' }
    },
    strict: true,
    allowPositionals: false
  }).values, usage)
}

type Values = ReturnType<typeof args>

function client (values: Values, io: CliIO, usage: string): VoximplantWebhook {
  const credentials = values.credentials ?? io.env.VOX_CREDENTIALS
  if (credentials === undefined || credentials === '') throw new UsageError('missing the key file: pass --credentials FILE or set VOX_CREDENTIALS', usage)
  const apiUrl = targetUrl(values['api-url'] ?? io.env.VOX_API_URL ?? 'https://api.voximplant.com', usage).href
  const timeout = integer(values.timeout ?? '30000', '--timeout', 1, usage)
  try {
    return voximplantWebhook({ credentials, timeout, apiUrl })
  } catch (error) {
    // The key file unreadable or not one: the command line named the wrong file.
    throw new UsageError((error as Error).message, usage)
  }
}

async function show (values: Values, io: CliIO, usage: string): Promise<number> {
  const state = await client(values, io, usage).show()
  io.stdout.write([
    `voximplant: account ${state.accountId}`,
    `callback_url: ${state.callbackUrl ?? 'none'}`,
    `callback_salt: ${state.saltSet ? 'set' : 'none'}`,
    ''
  ].join('\n'))
  return 0
}

async function set (values: Values, io: CliIO, usage: string): Promise<number> {
  const url = targetUrl(values.url, usage).href
  const given = secret(values.salt, values['salt-file'], io.env.VOX_SALT, 'the salt', usage)
  if (values['new-salt'] === true && (values.salt !== undefined || values['salt-file'] !== undefined)) {
    throw new UsageError('--new-salt and --salt (or --salt-file) do not go together', usage)
  }
  if (values['new-salt'] !== true && given !== undefined && given.length > 40) {
    throw new UsageError(`the salt must have 1 to 40 characters, it has ${given.length}`, usage)
  }
  const webhook = client(values, io, usage)
  // Without a salt of its own, the run keeps the one set: only an account without one gets a new one.
  const keep = values['new-salt'] !== true && given === undefined && (await webhook.show()).saltSet
  const salt = values['new-salt'] === true ? undefined : keep ? false : given
  const result = await webhook.set({ url, salt })
  const how = salt === false ? 'the salt kept' : salt === undefined ? 'a new salt' : `the salt given (${MASK})`
  io.stdout.write(`voximplant: callback_url set to ${url}, ${how}\n`)
  if (salt === undefined) {
    io.stdout.write(`salt: ${String(result.salt)}\n(shown once: store it, e.g. as VOX_SALT, where your app reads voximplant.secret.salt)\n`)
  }
  return 0
}
