// provider-callbacks inbox failed | retry | retry-failed --postgres, against an inbox on the real PostgreSQL.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { main } from '../lib/cli/index.js'
import { postBatch, signedItem, VOX } from './helpers.js'
import { counts, until } from './inbox-helpers.js'
import { PG_URL, postgresAvailable, SCHEMA_PREFIX } from './pg-helpers.js'
import { appWithInbox, pgInbox } from './pg-inbox-helpers.js'
import { freePort } from './redis-helpers.js'

t.setTimeout(120_000)

async function cli (argv: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, { stdout: { write: text => { stdout += text } }, stderr: { write: text => { stderr += text } }, env })
  return { code, stdout, stderr }
}

t.test('a wrong command line: exit 2, what is wrong, and the usage', async t => {
  for (const [argv, message] of [
    [['inbox', 'failed', '--postgres', PG_URL, '--redis', 'redis://x'], /give --redis or --postgres, not both/],
    [['inbox', 'failed', '--postgres', 'mysql://x'], /--postgres must be a postgres:\/\/ or postgresql:\/\/ URL/],
    [['inbox', 'failed', '--postgres', PG_URL, '--timeout', 'x'], /--timeout must be a positive integer/]
  ] as const) {
    const run = await cli([...argv])
    t.equal(run.code, 2, argv.join(' '))
    t.match(run.stderr, message)
    t.match(run.stderr, /Usage: provider-callbacks inbox/)
  }
  t.match((await cli(['inbox', '--help'])).stdout, /--postgres URL/)
})

t.test('a schema or queue name postgresInbox refuses: exit 1, said', async t => {
  const run = await cli(['inbox', 'failed', '--postgres', PG_URL, '--schema', 'a-b'])
  t.equal(run.code, 1)
  t.match(run.stderr, /connection.schema must be a plain SQL identifier/)
})

t.test('PostgreSQL refusing the connection: exit 1, said at once, the password in the URL never printed', async t => {
  const port = await freePort()
  for (const command of [['failed'], ['retry', 'voximplant:1:2'], ['retry-failed']]) {
    const run = await cli(['inbox', ...command, '--postgres', `postgres://root:s3cret-pw@127.0.0.1:${port}/test`, '--timeout', '20000'])
    t.equal(run.code, 1, command.join(' '))
    t.equal(run.stderr, `provider-callbacks: 127.0.0.1:${port} (queue provider-callbacks): connect ECONNREFUSED 127.0.0.1:${port}\n`)
    t.equal(run.stdout, '')
    t.notMatch(run.stdout + run.stderr, /s3cret/)
  }
})

t.test('with PostgreSQL', async t => {
  if (!await postgresAvailable(t)) return

  t.test('a schema or a queue that does not exist: exit 1, no such inbox, and nothing created', async t => {
    const schema = `${SCHEMA_PREFIX}${randomBytes(6).toString('hex')}`
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    t.teardown(async () => {
      await client.query(`drop schema if exists ${schema} cascade`)
      await client.end()
    })
    const schemas = async (): Promise<number> => (await client.query('select count(*)::int as n from pg_namespace where nspname = $1', [schema])).rows[0].n
    for (const command of [['failed'], ['retry', 'voximplant:1:2'], ['retry-failed']]) {
      const run = await cli(['inbox', ...command, '--postgres', PG_URL, '--schema', schema, '--name', 'typo'])
      t.equal(run.code, 1, command.join(' '))
      t.equal(run.stderr, `provider-callbacks: ${new URL(PG_URL).host} (queue typo): no such inbox (no queue typo in schema ${schema}); check --name and --schema\n`)
      t.equal(run.stdout, '')
      t.equal(await schemas(), 0, `${command.join(' ')}: no schema made`)
    }
    // The schema is there (an inbox of another name), the queue is not.
    const other = pgInbox(t, { name: 'other' })
    await other.inbox.queue()
    const run = await cli(['inbox', 'failed', '--postgres', PG_URL, '--schema', other.schema, '--name', 'typo'])
    t.equal(run.code, 1)
    t.match(run.stderr, /no such inbox \(no queue typo in schema/)
    const { rows } = await other.pool.query('select count(*)::int as n from meta where queue = $1', ['typo'])
    t.same(rows, [{ n: 0 }], 'no row made for it')
  })

  t.test('failed lists the dead letters, retry and retry-failed run them again', async t => {
    const test = pgInbox(t, { attempts: 1 })
    const { inbox, schema } = test
    let fixed = false
    const succeeded: string[] = []
    const app = await appWithInbox(t, test, {
      handlers: { 'min-balance': event => { if (!fixed) throw new Error('ledger down'); succeeded.push(event.id) } }
    })
    t.equal((await postBatch(app, [signedItem('min_balance', 1)])).statusCode, 200)
    await until(async () => (await counts(inbox)).failed === 1, 'dead-lettered')
    // One after the other: failed() lists the oldest first.
    t.equal((await postBatch(app, [signedItem('min_balance', 2)])).statusCode, 200)
    await until(async () => (await counts(inbox)).failed === 2, 'dead-lettered')
    const url = PG_URL.replace('root@', 'root:s3cret-pw@')
    const args = ['--postgres', url, '--schema', schema, '--name', 'test']
    const id = (n: number): string => `voximplant:${VOX.accountId}:${n}`
    const where = `${new URL(PG_URL).host} (queue test)`

    const failed = await cli(['inbox', 'failed', ...args])
    t.equal(failed.code, 0)
    t.equal(failed.stdout, `${id(1)}  min-balance  attempts 1  ledger down\n${id(2)}  min-balance  attempts 1  ledger down\n2 dead letters in ${where}\n`)
    t.notMatch(failed.stdout + failed.stderr, /s3cret/)

    fixed = true
    const retry = await cli(['inbox', 'retry', id(1), ...args])
    t.equal(retry.code, 0)
    t.equal(retry.stdout, `${id(1)}: back in ${where}, to run again\n`)
    await until(() => succeeded.length === 1, 'retried')
    t.match((await cli(['inbox', 'failed', ...args])).stdout, /^.*\n1 dead letter in/)
    const again = await cli(['inbox', 'retry', id(1), ...args])
    t.equal(again.code, 1)
    t.equal(again.stderr, `${id(1)}: not a dead letter in ${where}\n`)
    const all = await cli(['inbox', 'retry-failed', ...args])
    t.equal(all.stdout, `1 dead letter back in ${where}, to run again\n`)
    await until(() => succeeded.length === 2, 'retried')
    t.same(succeeded, [id(1), id(2)])
    t.equal((await cli(['inbox', 'failed', ...args])).stdout, `0 dead letters in ${where}\n`)
  })
})
