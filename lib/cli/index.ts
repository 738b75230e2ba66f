// provider-callbacks: tries provider callbacks on a route (send), and sets the providers up to send
// them (edis, voximplant). A command is a file of its own, listed once in `commands`.
import { NAME, UsageError, print, version, type CliIO, type Command } from './common.js'
import { edis } from './edis.js'
import { inbox } from './inbox.js'
import { send } from './send.js'
import { voximplant } from './voximplant.js'

export type { CliIO } from './common.js'

const commands: Record<string, Command> = {
  send,
  edis,
  voximplant,
  inbox
}

const USAGE = `Usage: ${NAME} <command> [options]

Sets EDIS Global and Voximplant up to call your routes, and sends a URL the callbacks a provider
sends, encoded and signed as the provider does: to try your route end to end, locally or deployed;
and lists and replays the dead letters of an inbox.

Commands:
${Object.values(commands).map(command => command.help).join('\n')}

Options:
  -h, --help        this help; '${NAME} <command> --help' for a command's options
  --version         the version

Exit codes: 0 every answer was 2xx; 1 an answer was not (a provider refused a call), or none came;
2 the command line was wrong.
`

/**
 * Runs the command line `argv` (without `node` and the script) and resolves to the exit code:
 * 0 when every answer was a success, 1 when one was not or none came, 2 for a wrong command line.
 */
export async function main (argv: string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  try {
    const [name, ...rest] = argv
    if (name === undefined || name === '--help' || name === '-h') return print(USAGE, io)
    if (name === '--version') return print(`${version()}\n`, io)
    const command = Object.hasOwn(commands, name) ? commands[name] : undefined
    if (command === undefined) throw new UsageError(`unknown command '${name}'`, USAGE)
    return await command.run(rest, io, USAGE)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    io.stderr.write(`${NAME}: ${error.message}\n\n${error.usage}`)
    return 2
  }
}
