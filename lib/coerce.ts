import { Kind, type TSchema } from '@sinclair/typebox'

// Decimal text only: no exponents, hex, padding or leading zeros, and exact numbers, so that the
// number prints back to the same text (a Voximplant hash covers the ids' text): integers up to
// Number.MAX_SAFE_INTEGER (16 digits), fractions up to 15 significant digits before the point.
// `-0` is no integer here: it would print back as `0`, another id than the one sent.
const INTEGER_TEXT = /^(?:0|-?[1-9]\d{0,15})$/
const NUMBER_TEXT = /^-?(?:0|[1-9]\d{0,14})(?:\.\d{1,15})?$/

type Coerce = (value: unknown) => unknown

/**
 * Where a schema says number or integer, a form field or a lenient JSON sender may give decimal
 * text. Returns a function that turns such text into the number it spells, in place for objects
 * and arrays, derived from the schema so the conversions and the validation cannot drift apart;
 * undefined when the schema holds no number at all. Everything else is left for the validator.
 */
export function numberCoercion (schema: TSchema): Coerce | undefined {
  switch (schema[Kind]) {
    case 'Integer':
      return value => {
        if (typeof value === 'string') return INTEGER_TEXT.test(value) && Number.isSafeInteger(Number(value)) ? Number(value) : value
        // JSON's -0 as its text, which the validator refuses: the schema's minimum 0 would not.
        return Object.is(value, -0) ? '-0' : value
      }
    case 'Number':
      return value => typeof value === 'string' && NUMBER_TEXT.test(value) ? Number(value) : value
    case 'Union': {
      // A string is converted if a member takes a number; unions of objects are not looked into.
      const numeric = (schema.anyOf as TSchema[]).find(member => member[Kind] === 'Integer' || member[Kind] === 'Number')
      return numeric === undefined ? undefined : numberCoercion(numeric)
    }
    case 'Object': {
      const fields = Object.entries(schema.properties as Record<string, TSchema>)
        .map(([key, property]) => [key, numberCoercion(property)] as const)
        .filter((entry): entry is readonly [string, Coerce] => entry[1] !== undefined)
      if (fields.length === 0) return undefined
      return value => {
        if (typeof value !== 'object' || value === null) return value
        const object = value as Record<string, unknown>
        for (const [key, coerce] of fields) {
          if (Object.hasOwn(object, key)) object[key] = coerce(object[key])
        }
        return value
      }
    }
    case 'Array': {
      const item = numberCoercion(schema.items as TSchema)
      if (item === undefined) return undefined
      return value => {
        if (!Array.isArray(value)) return value
        for (let i = 0; i < value.length; i++) value[i] = item(value[i])
        return value
      }
    }
    default:
      return undefined
  }
}
