import { Type } from '@sinclair/typebox'
import t from 'tap'
import { typeboxValidatorCompiler } from '../lib/validation.js'

// The EDIS schema cannot produce many problems at once; a batch can. The answer lists at most
// ten, one per field, so a hostile body cannot make it large.
t.test('a 400 lists at most ten problems, one per path', async t => {
  const schema = Type.Object(Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}`, Type.Integer({ minimum: 5 })])))
  const validate = typeboxValidatorCompiler({ schema, method: 'POST', url: '/', httpPart: 'body' }) as (data: unknown) => { error?: { problems: Array<{ path: string }> }, value?: unknown }
  // Each field is wrong twice over (not an integer, under the minimum).
  const result = validate(Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}`, 1.5])))
  t.same(result.error?.problems.map(p => p.path), ['/f0', '/f1', '/f2', '/f3', '/f4', '/f5', '/f6', '/f7', '/f8', '/f9'])
  const good = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}`, 5]))
  t.same(validate(good), { value: good })
})
