import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler, ValueErrorType, type ValueError } from '@sinclair/typebox/compiler'
import type { FastifySchemaCompiler } from 'fastify'
import { invalidPayload, type FieldProblem } from './errors.js'

const MAX_PROBLEMS = 10

/**
 * The routes' validator compiler: TypeBox's compiled checks, set on the plugin's own scope so the
 * routes behave the same whatever Ajv options or compiler the host chose for its routes. Nothing
 * is coerced or removed here: a route converts what its wire format needs before validation.
 */
export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema }) => {
  const check = TypeCompiler.Compile(schema)
  return (data: unknown) => {
    if (check.Check(data)) return { value: data }
    const problems: FieldProblem[] = []
    for (const problem of explain(check.Errors(data))) {
      if (problems.length === MAX_PROBLEMS) break
      if (!problems.some(p => p.path === problem.path)) problems.push(problem)
    }
    return { error: invalidPayload(problems) }
  }
}

// TypeBox says only "Expected union value". For a union of objects told apart by `type` (the
// Voximplant item schemas), report what is wrong inside the member the item's type selects; for
// a union of scalars, name the alternatives.
function * explain (errors: Iterable<ValueError>): Generator<FieldProblem> {
  for (const error of errors) {
    if (error.type !== ValueErrorType.Union) {
      yield { path: error.path, message: error.message }
      continue
    }
    const members = error.schema.anyOf as TSchema[]
    const selected = selectedMember(members, error.value)
    if (selected !== -1) {
      yield * explain(error.errors[selected]!)
    } else if (members.every(member => member.properties?.type !== undefined)) {
      // Items that are not objects never get here: they cannot be signed, so they are a 401.
      yield { path: `${error.path}/type`, message: 'Expected string' }
    } else {
      yield { path: error.path, message: `Expected ${members.map(describe).join(' or ')}` }
    }
  }
}

function selectedMember (members: TSchema[], value: unknown): number {
  const type = (value as { type?: unknown } | null)?.type
  if (typeof type !== 'string') return -1
  const byLiteral = members.findIndex(member => member.properties?.type?.const === type)
  return byLiteral !== -1 ? byLiteral : members.findIndex(member => member.properties?.type !== undefined && member.properties.type.const === undefined)
}

function describe (member: TSchema): string {
  return member.const !== undefined ? JSON.stringify(member.const) : String(member.type)
}
