// `<command> <group> <name> [flags]`, as `edis hooks set` and `voximplant webhook show` are: the help
// at each level, only the subcommand's own flags, and a provider's refusal as exit code 1.
import { ProvisionError } from '../provision/http.js'
import { print, UsageError, type CliIO } from './common.js'

export interface Subcommand<Values> {
  usage: string
  /** Its own flags, beside the group's shared ones. */
  flags: readonly string[]
  run: (values: Values, io: CliIO, usage: string) => Promise<number>
}

export interface SubcommandGroup<Values extends { help?: boolean | undefined }> {
  /** The command and the group, as typed: `edis hooks`. */
  path: string
  usage: string
  subcommands: Record<string, Subcommand<Values>>
  /** The flags every subcommand takes. */
  shared: readonly string[]
  parse: (args: string[], usage: string) => Values
}

export async function runSubcommand<Values extends { help?: boolean | undefined }> (group: SubcommandGroup<Values>, [given, name, ...rest]: string[], io: CliIO): Promise<number> {
  const { path, usage, subcommands, shared, parse } = group
  const [command, expected] = path.split(' ')
  const names = Object.keys(subcommands)
  if (given === undefined || given === '--help' || given === '-h') return print(usage, io)
  if (given !== expected) throw new UsageError(`unknown ${command} command '${given}': ${path} ${names.join('|')}`, usage)
  if (name === undefined || name === '--help' || name === '-h') return print(usage, io)
  if (!Object.hasOwn(subcommands, name)) throw new UsageError(`unknown command '${path} ${name}': ${names.slice(0, -1).join(', ')} or ${names.at(-1)}`, usage)
  const subcommand = subcommands[name]!
  const values = parse(rest, subcommand.usage)
  if (values.help === true) return print(subcommand.usage, io)
  const foreign = Object.keys(values).find(flag => !subcommand.flags.includes(flag) && !shared.includes(flag))
  if (foreign !== undefined) throw new UsageError(`--${foreign} does not go with '${path} ${name}'`, subcommand.usage)
  try {
    return await subcommand.run(values, io, subcommand.usage)
  } catch (error) {
    if (!(error instanceof ProvisionError)) throw error
    io.stderr.write(`${error.message}\n`)
    return 1
  }
}
