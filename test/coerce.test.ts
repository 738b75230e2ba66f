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

t.test('integer text is read up to the largest safe integer, and no further: the number must print back as sent', async t => {
  const coerce = numberCoercion(Type.Object({ id: Type.Integer() }))!
  const read = (id: string): unknown => (coerce({ id }) as { id: unknown }).id
  t.equal(read('123456789012345'), 123456789012345, '15 digits')
  t.equal(read('9007199254740991'), 9007199254740991, '16 digits, Number.MAX_SAFE_INTEGER')
  t.equal(read('9007199254740993'), '9007199254740993', 'past it the number would not be exact: left as text')
  t.equal(read('12345678901234567'), '12345678901234567', '17 digits')
  t.equal(read('0123'), '0123', 'a leading zero would not print back')
  t.equal(read('-0'), '-0', '-0 would print back as 0: left as text')
  t.equal(read('-5'), -5, 'other negatives are read (the schema decides)')
  t.equal((coerce({ id: -0 }) as { id: unknown }).id, '-0', 'JSON\'s -0 too: the validator then refuses it')
  t.equal((coerce({ id: 0 }) as { id: unknown }).id, 0)
})
