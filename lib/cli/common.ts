// What every command shares: the I/O it is given, usage errors (exit 2), and the parsing of flags.
import { readFileSync, realpathSync } from 'node:fs'
import { createRequire } from 'node:module'

/** Where the CLI writes and what environment it reads: the process's own unless a test says otherwise. */
export interface CliIO {
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
  env: Record<string, string | undefined>
}

/** A command: its lines in the top-level help, and what runs it (resolving to the exit code). */
export interface Command {
  help: string
  /** `usage` is the top-level help, for a command that has subcommands to list. */
  run: (args: string[], io: CliIO, usage: string) => Promise<number>
}

export const NAME = 'provider-callbacks'
export const MASK = '****'

/** A wrong command line: main() prints the message and `usage` on stderr and exits 2. */
export class UsageError extends Error {
  constructor (message: string, readonly usage: string) {
    super(message)
  }
}

export function print (text: string, io: CliIO): number {
  io.stdout.write(text)
  return 0
}

// lib/ is compiled to CommonJS too, where import.meta does not exist, and this file sits at another
// depth in dist/esm/ than in lib/. The entry script (bin/provider-callbacks.js, or the test fixture)
// is always inside the package, so a require() from there finds package.json by the package's name.
export function version (): string {
  const load = createRequire(realpathSync(String(process.argv[1])))
  return (load('fastify-provider-callbacks/package.json') as { version: string }).version
}

export function userAgent (): string {
  return `${NAME}/${version()}`
}

// parseArgs's messages, cut to their first sentence: the rest tells how to pass a positional.
export function parsed<T> (parse: () => T, usage: string): T {
  try {
    return parse()
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/(\.\s|\.?\n)[\s\S]*$/, ''), usage)
  }
}

export function targetUrl (text: string | undefined, usage: string): URL {
  if (text === undefined) throw new UsageError('missing --url', usage)
  const url = URL.canParse(text) ? new URL(text) : undefined
  // A password there would go out as an Authorization header, and be printed (so not even quoted here).
  if (url !== undefined && (url.username !== '' || url.password !== '')) throw new UsageError('--url must not hold a user or password', usage)
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(`--url must be an http or https URL, got '${text}'`, usage)
  }
  return url
}

export function integer (text: string, label: string, min: number, usage: string): number {
  if (!/^\d{1,15}$/.test(text) || Number(text) < min) {
    throw new UsageError(`${label} must be an integer of at least ${min}, got '${text}'`, usage)
  }
  return Number(text)
}

export function choice<T extends string> (text: string, label: string, choices: readonly T[], usage: string): T {
  const value = text.toLowerCase() as T
  if (!choices.includes(value)) throw new UsageError(`${label} must be ${choices.join(' or ')}, got '${text}'`, usage)
  return value
}

export function plural (count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`
}

/** The URL as printed: no fragment (it is not sent). */
export function address (url: URL): string {
  return url.origin + url.pathname + url.search
}

/**
 * A secret from its flag, else the file its -file flag names (one trailing newline dropped), else
 * the environment: undefined when none has it. An unreadable file is a usage error naming the file.
 */
export function secret (flag: string | undefined, file: string | undefined, env: string | undefined, label: string, usage: string): string | undefined {
  if (flag !== undefined) return flag
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
    } catch (error) {
      throw new UsageError(`cannot read ${label} from ${file}: ${String((error as NodeJS.ErrnoException).code)}`, usage)
    }
  }
  return env === '' ? undefined : env
}
