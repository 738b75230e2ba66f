import { readFileSync } from 'node:fs'
import t from 'tap'
import { PAYLOAD_TYPES_FILE, payloadTypesSource, withEvents } from '../scripts/events-doc.js'

t.test('README.md lists every event with the fields its schema has (run `npm run docs` to update)', async t => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  t.equal(readme, withEvents(readme))
  for (const name of ['traffic-threshold', 'min-balance', 'sms-inbound', 'new-invoice', 'batch-task-cancelling-completed']) {
    t.match(readme, name)
  }
  t.match(readme, '| `min_balance.is_repeated` | boolean |')
  t.match(readme, '| `sms_inbound.sms_inbound.sms_body` | string, optional |')
})

t.test('lib/voximplant/payload-types.ts has a type per payload, named by its schema title (run `npm run docs` to update)', async t => {
  t.equal(readFileSync(PAYLOAD_TYPES_FILE, 'utf8'), payloadTypesSource())
  t.match(payloadTypesSource(), "export type MinBalanceCallback = Payload<'min_balance'>")
  t.match(payloadTypesSource(), "export type InboundSmsCallback = Payload<'sms_inbound'>")
})
