// The state file of `edis hooks`: EDIS lists no hooks, so what `set` created is known only from
// here. It holds no secret (the hook's user, never its password), and is rewritten after each
// hook set or removed, so that a run stopped halfway still records what it did.
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { UsageError } from './common.js'

export const RecordedHookSchema = Type.Object({
  kvm: Type.String(),
  trigger: Type.Integer({ minimum: 0 }),
  hookId: Type.Integer({ minimum: 0 }),
  url: Type.String(),
  method: Type.Union([Type.Literal('post'), Type.Literal('get')]),
  user: Type.Optional(Type.String()),
  setAt: Type.String()
})
export type RecordedHook = Static<typeof RecordedHookSchema>

const StateSchema = Type.Object({ version: Type.Literal(1), hooks: Type.Array(RecordedHookSchema) })

export const DEFAULT_STATE = 'edis-hooks.json'

export function readState (path: string, usage: string): RecordedHook[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new UsageError(`cannot read the state file ${path}: ${String((error as NodeJS.ErrnoException).code)}`, usage)
  }
  let state: unknown
  try {
    state = JSON.parse(text)
  } catch {}
  if (!Value.Check(StateSchema, state)) throw new UsageError(`${path} is not a state file of edis hooks (version 1)`, usage)
  return state.hooks
}

export function writeState (path: string, hooks: readonly RecordedHook[]): void {
  // Written whole, then renamed over the old one: a crash leaves the old file or the new one.
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, JSON.stringify({ version: 1, hooks }, null, 2) + '\n')
  renameSync(temporary, path)
}
