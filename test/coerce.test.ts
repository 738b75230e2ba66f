import { Type } from '@sinclair/typebox'
import t from 'tap'
import { numberCoercion } from '../lib/coerce.js'

// The routes reach this through real requests (form fields, lenient Voximplant numbers); these are
// the schema shapes the providers' schemas do not happen to have yet.
t.test('only what the schema calls a number is converted, and only from decimal text', async t => {
  const coerce = numberCoercion(Type.Object({
    n: Type.Number(),
    either: Type.Union([Type.String(), Type.Number()]),
    list: Type.Array(Type.Integer()),
    nested: Type.Object({ i: Type.Integer() }),
    text: Type.String()
  }))!
  t.same(coerce({ n: '1.5', either: '2', list: ['3', 'x', 4], nested: { i: '5' }, text: '6' }), { n: 1.5, either: 2, list: [3, 'x', 4], nested: { i: 5 }, text: '6' })
  t.same(coerce({ list: 'not a list', nested: null }), { list: 'not a list', nested: null }, 'wrong shapes are left for the validator')
  t.equal(coerce('not an object'), 'not an object')
})

t.test('a schema without numbers needs no coercion', async t => {
  t.equal(numberCoercion(Type.Object({ a: Type.String(), b: Type.Union([Type.String(), Type.Boolean()]), c: Type.Array(Type.String()) })), undefined)
})
