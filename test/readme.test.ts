import { readFileSync } from 'node:fs'
import t from 'tap'
import { postgresStoreSchema } from '../lib/idempotency/postgres.js'
import { EVENTS_FILE, eventsDocument, PAYLOAD_TYPES_FILE, payloadTypesSource } from '../scripts/events-doc.js'

t.test('docs/events.md lists every event with the fields its schema has (run `npm run docs` to update); README links it', async t => {
  const events = readFileSync(EVENTS_FILE, 'utf8')
  t.equal(events, eventsDocument())
  for (const name of ['traffic-threshold', 'min-balance', 'sms-inbound', 'new-invoice', 'batch-task-cancelling-completed']) {
    t.match(events, name)
  }
  t.match(events, '| `min_balance.is_repeated` | boolean |')
  t.match(events, '| `sms_inbound.sms_inbound.sms_body` | string, optional |')
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  t.match(readme, '[docs/events.md](docs/events.md)')
  t.notMatch(readme, '| `min_balance.is_repeated`', 'the tables are no longer in README')
})

t.test('lib/voximplant/payload-types.ts has a type per payload, named by its schema title (run `npm run docs` to update)', async t => {
  t.equal(readFileSync(PAYLOAD_TYPES_FILE, 'utf8'), payloadTypesSource())
  t.match(payloadTypesSource(), "export type MinBalanceCallback = Payload<'min_balance'>")
  t.match(payloadTypesSource(), "export type InboundSmsCallback = Payload<'sms_inbound'>")
})

// The examples themselves compile and run in test:package (scripts/check-readme.mjs, against the
// packed package); here, only that each one is marked for a check there, which needs no build.
interface Block { file: string, lang: string, id: string | undefined, fenceLine: number, code: string }
const { docFiles, docBlocks, readmeBlocks, markerProblems } = await import('../scripts/check-readme.mjs' as string) as {
  docFiles: () => string[]
  docBlocks: () => Block[]
  readmeBlocks: (text: string, file?: string) => Block[]
  markerProblems: (blocks: Block[]) => string[]
}

t.test('every ts and js block in README.md and the docs is marked for a check in scripts/check-readme.mjs, and every check has its block', async t => {
  const files = docFiles()
  t.same(files.slice(0, 1), ['README.md'])
  t.ok(files.includes('docs/events.md'), 'docs/*.md are read')
  const blocks = docBlocks()
  t.same(markerProblems(blocks), [])
  t.ok(blocks.some(block => block.file === 'README.md' && block.id === 'usage' && block.lang === 'ts'), 'the Usage example is one of them')
})

t.test('a block without a marker, or a marker without a check, is reported at its file and line', async t => {
  const text = ['# x', '', '```ts', 'const a = 1', '```', '<!-- readme-check: nowhere -->', '```js', 'b()', '```', '```sh', 'npm test', '```'].join('\n')
  const blocks = readmeBlocks(text)
  t.same(blocks.map(block => [block.file, block.lang, block.id, block.fenceLine]), [['README.md', 'ts', undefined, 3], ['README.md', 'js', 'nowhere', 7], ['README.md', 'sh', undefined, 10]])
  const problems = markerProblems(blocks).join('\n')
  t.match(problems, 'README.md:3: a ```ts block without a <!-- readme-check: ID --> marker')
  t.match(problems, "README.md:7: readme-check 'nowhere' has no check")
  t.match(problems, "check 'usage' has no block in README.md, docs/*.md")
  t.notMatch(problems, 'README.md:10', 'an unmarked sh block is not a problem')

  const page = readmeBlocks(['<!-- readme-check: usage -->', '```ts', 'x()', '```', '', '```js', '```'].join('\n'), 'docs/page.md')
  const across = markerProblems([...readmeBlocks(['<!-- readme-check: usage -->', '```ts', '```'].join('\n')), ...page]).join('\n')
  t.match(across, "docs/page.md:2: readme-check id 'usage' is used twice (first at README.md:2)", 'an id is unique across the files')
  t.match(across, 'docs/page.md:6: a ```js block without a <!-- readme-check: ID --> marker', 'a page\'s problem names the page')
})

t.test('docs/guarantee.md\'s migration is the SQL postgresStoreSchema() gives, and its one sql block', async t => {
  const page = readFileSync(new URL('../docs/guarantee.md', import.meta.url), 'utf8')
  const sql = readmeBlocks(page, 'docs/guarantee.md').filter(block => block.lang === 'sql')
  t.same(sql.map(block => block.code), [postgresStoreSchema() + '\n'])
})
