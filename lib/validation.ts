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
    for (const error of check.Errors(data)) {
      if (problems.length === MAX_PROBLEMS) break
      if (!problems.some(p => p.path === error.path)) problems.push({ path: error.path, message: describe(error) })
    }
    return { error: invalidPayload(problems) }
  }
}

// TypeBox says only "Expected union value"; name the alternatives instead.
function describe (error: ValueError): string {
  if (error.type !== ValueErrorType.Union) return error.message
  const members = (error.schema.anyOf as TSchema[]).map(member => member.const !== undefined ? JSON.stringify(member.const) : String(member.type))
  return `Expected ${members.join(' or ')}`
}
