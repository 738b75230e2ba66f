// Checks that every example of the documentation compiles and does what it says, against the package
// as users install it: README.md, every docs/*.md page, bench/README.md and CONTRIBUTING.md (those
// that exist; `docFiles()`). `checkReadme({ consumerDir, report })` is given a project into which the
// packed tarball is installed with fastify@5, typescript@5.9, @types/node@20, ioredis@5, bullmq@6,
// @bull-board (api, fastify) 9, pg@8 with @types/pg@8, and the OpenTelemetry packages of
// docs/telemetry.md's example (check-package.mjs makes one, and keeps it with
// KEEP_PACKAGE_CHECK_DIRS=1); `node scripts/check-readme.mjs <consumerDir>` runs it by hand.
//
// The conventions every one of those files follows:
// - Every ```ts and ```js block has `<!-- readme-check: ID -->` on the line before its fence, and ID
//   names its check in CHECKS below. A ts or js block without a marker, a marker without a check and
//   a check without its block all fail, so that a new example cannot go unchecked. IDs are unique
//   across all the files.
// - A ```sh block is run only when marked; the unmarked ones are for this repository (npm test).
// - A block is self-contained: what it uses, it imports or defines. A block that is only a listing
//   (an interface) compiles with an epilogue of its check's, which compares it with the package's type.
// - Every ts and js block, whichever file it is in, is written as readme/ID.mts and compiled in one
//   tsc program: strict, noUncheckedIndexedAccess, exactOptionalPropertyTypes, module and
//   moduleResolution nodenext. A ts block runs as tsc emitted it (readme/out/ID.mjs); a js block runs
//   as its own text (readme/ID.mjs), so that it is valid JavaScript as well as type-correct TypeScript.
//   A block whose check says `ownProgram` is compiled in a program of its own instead: one whose
//   `declare module` augments the package's types for the whole program (ProviderCallbacksTypes)
//   would otherwise change every other block's types too.
//   A block may run another's file (docs/cli.md's commands run README's local.mjs).
// - A server listens on `Number(process.env.PORT ?? 3000)`: the check sets PORT=0 and reads the port
//   from Fastify's "Server listening at" log line. In a sh block, `localhost:3000` and
//   `https://your.host` become that server's address, and `NAME=…` (a secret the reader fills in)
//   becomes NAME set in the command's environment to what that server expects.
// A failure names the block's file and line (`docs/inbox.md:42`), and tsc's errors are given at the
// file's lines.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer as createHttpServer } from 'node:http'
import { createConnection, createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
// A guard against a hang, not a measure of speed: a server that has not logged what it was sent by
// then never will.
const PATIENCE = 60_000
// The made-up secrets of README's "Try it locally" app (readme-check: local).
const LOCAL = { EDIS_CALLBACK_PW: 'local-pw', VOX_API_KEY: 'local-key', VOX_SALT: 'local-salt' }
// The CLI lists each answer up to this many requests (docs/cli.md's table says so).
const CLI_LISTS_UP_TO = 20

/**
 * The files whose blocks are checked, as paths from the repository's root: README.md, every
 * docs/*.md in name order, bench/README.md and CONTRIBUTING.md, those that exist.
 */
export function docFiles (root = ROOT) {
  const docs = existsSync(join(root, 'docs'))
    ? readdirSync(join(root, 'docs')).filter(name => name.endsWith('.md')).sort().map(name => `docs/${name}`)
    : []
  return ['README.md', ...docs, 'bench/README.md', 'CONTRIBUTING.md'].filter(file => existsSync(join(root, file)))
}

/** A file's fenced blocks, each with its file, language, marker id, the line of its fence and its code. */
export function readmeBlocks (text, file = 'README.md') {
  const lines = text.split('\n')
  const blocks = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i])
    if (open === null) continue
    const end = lines.findIndex((line, j) => j > i && /^```\s*$/.test(line))
    if (end === -1) throw new Error(`${file}:${i + 1}: a code block that is never closed`)
    const marker = /^<!-- readme-check: ([\w-]+) -->$/.exec(lines[i - 1] ?? '')
    blocks.push({ file, lang: open[1], id: marker?.[1], fenceLine: i + 1, code: lines.slice(i + 1, end).join('\n') + '\n' })
    i = end
  }
  return blocks
}

/** The blocks of every file `docFiles(root)` gives, in that order. */
export function docBlocks (root = ROOT) {
  return docFiles(root).flatMap(file => readmeBlocks(readFileSync(join(root, file), 'utf8'), file))
}

/** `file:line` of a block's fence. */
const at = block => `${block.file ?? 'README.md'}:${block.fenceLine}`

/**
 * What is wrong with the markers of `blocks` (from any number of files): a ts/js block without one,
 * an id used twice (in one file or in two), an id without a check or the reverse.
 */
export function markerProblems (blocks, checks = CHECKS) {
  const problems = []
  const seen = new Map()
  for (const block of blocks) {
    if (block.id === undefined) {
      if (block.lang === 'ts' || block.lang === 'js') problems.push(`${at(block)}: a \`\`\`${block.lang} block without a <!-- readme-check: ID --> marker on the line before it`)
      continue
    }
    if (seen.has(block.id)) problems.push(`${at(block)}: readme-check id '${block.id}' is used twice (first at ${at(seen.get(block.id))})`)
    else seen.set(block.id, block)
    if (!Object.hasOwn(checks, block.id)) problems.push(`${at(block)}: readme-check '${block.id}' has no check in scripts/check-readme.mjs`)
    else if (checks[block.id].lang !== block.lang) problems.push(`${at(block)}: readme-check '${block.id}' is for a \`\`\`${checks[block.id].lang} block, not \`\`\`${block.lang}`)
  }
  for (const id of Object.keys(checks)) {
    if (!seen.has(id)) problems.push(`scripts/check-readme.mjs: check '${id}' has no block in README.md, docs/*.md, bench/README.md or CONTRIBUTING.md`)
  }
  return problems
}

// ---- running things ------------------------------------------------------------------------------

// Without npm's variables (a run under `npm test` has them, pointing at this repository) and never
// online: an npx that does not find the package's bin must fail, not fetch something.
function childEnv (extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')))
  return { ...env, NO_COLOR: '1', FORCE_COLOR: '0', npm_config_offline: 'true', npm_config_update_notifier: 'false', ...extra }
}

/** Runs a command to its end; resolves with its exit code and output, never rejects. */
function run (command, args, { cwd, env }) {
  return new Promise(resolve => {
    execFile(command, args, { cwd, env: childEnv(env), maxBuffer: 64 * 1024 * 1024, timeout: PATIENCE * 2 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr })
    })
  })
}

/**
 * Starts `node file`. Its JSON log lines are collected in `logs`, its stdout in `stdout` and its
 * stderr in `stderr`; `waitFor(condition, what)` resolves to what `condition()` gives once that is
 * truthy; `exited` resolves once it has exited, `exit` then being its exit code (or the signal that
 * ended it); `stop()` sends it SIGTERM, unless it has exited, and waits for that.
 */
function startProcess (file, { cwd, env }) {
  const child = spawn(process.execPath, [file], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  const server = { logs: [], stdout: '', stderr: '', exit: undefined, waiters: [], child }
  const settle = () => {
    server.waiters = server.waiters.filter(waiter => {
      const found = waiter.condition()
      if (found) waiter.resolve(found)
      else if (server.exit !== undefined) waiter.reject(new Error(`the process exited (${server.exit}) first\n${server.output()}`))
      else return true
      clearTimeout(waiter.timer)
      return false
    })
  }
  let pending = ''
  child.stdout.on('data', chunk => {
    server.stdout += chunk
    const lines = (pending + chunk).split('\n')
    pending = lines.pop()
    for (const line of lines) {
      try { server.logs.push(JSON.parse(line)) } catch { /* not a log line: kept in stdout */ }
    }
    settle()
  })
  child.stderr.on('data', chunk => { server.stderr += chunk; settle() })
  server.exited = new Promise(resolve => child.on('close', (code, signal) => { server.exit = code ?? signal; settle(); resolve() }))
  server.output = () => `stdout:\n${tail(server.stdout)}\nstderr:\n${tail(server.stderr)}`
  server.waitFor = (condition, what) => new Promise((resolve, reject) => {
    const waiter = { condition, resolve, reject }
    waiter.timer = setTimeout(() => {
      server.waiters = server.waiters.filter(w => w !== waiter)
      reject(new Error(`no ${what} within ${PATIENCE / 1000} s\n${server.output()}`))
    }, PATIENCE)
    server.waiters.push(waiter)
    settle()
  })
  server.stop = async () => {
    if (server.exit === undefined) child.kill('SIGTERM')
    await server.exited
  }
  return server
}

/** Starts `node file` with PORT=0 (`startProcess`) and waits for Fastify's "Server listening at" line, which gives its `port` and `url`. */
function startServer (file, { cwd, env }) {
  const server = startProcess(file, { cwd, env: { PORT: '0', ...env } })
  return server.waitFor(() => server.logs.find(line => /^Server listening at /.test(line.msg ?? '')), '"Server listening at" line').then(line => {
    const port = Number(new URL(line.msg.slice('Server listening at '.length)).port)
    return Object.assign(server, { port, url: `http://127.0.0.1:${port}` })
  }, async error => { await server.stop(); throw error })
}

function tail (text, lines = 30) {
  const all = text.trimEnd().split('\n')
  return (all.length > lines ? [`… ${all.length - lines} lines before`, ...all.slice(-lines)] : all).join('\n')
}

/** Starts a server, gives it to `use`, and stops it whatever happens. */
async function withServer (file, options, use) {
  const server = await startServer(file, options)
  try {
    return await use(server)
  } finally {
    await server.stop()
  }
}

async function post (url, body, headers) {
  const response = await fetch(url, { method: 'POST', body, headers })
  return { status: response.status, text: await response.text() }
}

const postJson = (url, value) => post(url, JSON.stringify(value), { 'content-type': 'application/json' })

function basic (username, password) {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64')
}

/** A port nothing listens on, for a Redis that is down. */
/** A client connected to `url`, or (no Redis there) the check's SKIPPED line; where CI is set, no Redis fails. */
async function connectedOrNot (consumerRequire, url) {
  const { Redis } = consumerRequire('ioredis')
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
  redis.on('error', () => {})
  if (await redis.connect().then(() => true, () => false)) return redis
  redis.disconnect()
  if (process.env.CI !== undefined) throw new Error(`no Redis at ${url}, and CI is set`)
  return `SKIPPED: no Redis at ${url} (set REDIS_URL; where CI is set this fails)`
}

/** The PostgreSQL the examples run against: PG_URL, or the one the tests use. */
const PG_URL = process.env.PG_URL ?? 'postgres://root@127.0.0.1:5432/test'

/**
 * A client of the PostgreSQL at `url`, connected, or (none there) the check's SKIPPED line; where
 * CI is set, no PostgreSQL fails.
 */
async function postgresOrNot (consumerRequire, url) {
  const pg = consumerRequire('pg')
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  client.on('error', () => {})
  if (await client.connect().then(() => true, () => false)) return client
  await client.end().catch(() => {})
  if (process.env.CI !== undefined) throw new Error(`no PostgreSQL at ${url}, and CI is set`)
  return `SKIPPED: no PostgreSQL at ${url} (set PG_URL; where CI is set this fails)`
}

/**
 * `url` with every session in `schema` (search_path) and named after it (application_name), so
 * that what an example makes goes there and its sessions can be found and ended.
 */
function inSchema (url, schema) {
  const withSchema = new URL(url)
  withSchema.searchParams.set('options', `-c search_path=${schema}`)
  withSchema.searchParams.set('application_name', schema)
  return withSchema.href
}

/**
 * The Redis the examples run against: a redis-server of this check's own, on its own port, when
 * one is on PATH and REDIS_URL is not set, so that the examples' documented queue and keys (a
 * user's own inbox would have them) are never written on the machine's shared Redis; else
 * REDIS_URL, or 127.0.0.1:6379.
 */
async function examplesRedis () {
  const shared = { url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', stop: async () => {} }
  if (process.env.REDIS_URL !== undefined) return shared
  const port = await closedPort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const started = await new Promise(resolve => {
    child.on('error', () => resolve(false))
    const deadline = Date.now() + 10_000
    const poll = () => {
      const socket = createConnection(port, '127.0.0.1')
      socket.on('connect', () => { socket.destroy(); resolve(true) })
      socket.on('error', () => { socket.destroy(); Date.now() < deadline ? setTimeout(poll, 50) : resolve(false) })
    }
    poll()
  })
  if (!started) {
    child.kill()
    return shared
  }
  const exited = new Promise(resolve => child.once('exit', resolve))
  return { url: `redis://127.0.0.1:${port}`, stop: async () => { child.kill(); await exited } }
}

function closedPort () {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    }).on('error', reject)
  })
}

/** A Voximplant item of a type the package does not know, signed as Voximplant would sign it. */
function unknownItem (kit, secret, type) {
  const item = kit.voximplantCallback('min_balance', secret)
  const { min_balance: _, ...common } = item
  return { ...common, type, [type]: { anything: 'new' } }
}

/** Resolves to what `condition()` gives once it is truthy, asking every 50 ms, for up to PATIENCE. */
async function poll (condition, what) {
  const deadline = Date.now() + PATIENCE
  for (;;) {
    const found = await condition()
    if (found) return found
    if (Date.now() > deadline) throw new Error(`no ${what} within ${PATIENCE / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** An OTLP/HTTP collector on a free port: the spans posted to it (the JSON encoding), each with its scope's name. */
async function otlpCollector () {
  const spans = []
  const server = createHttpServer((request, response) => {
    let body = ''
    request.on('data', chunk => { body += chunk })
    request.on('end', () => {
      try {
        for (const resource of JSON.parse(body).resourceSpans ?? []) {
          for (const scope of resource.scopeSpans ?? []) spans.push(...scope.spans.map(span => ({ ...span, scope: scope.scope.name })))
        }
      } catch { /* not a trace export */ }
      response.setHeader('content-type', 'application/json')
      response.end('{}')
    })
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return { spans, url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise(resolve => server.close(resolve)) }
}

/** An OTLP span's attributes as an object. */
const otlpAttributes = span => Object.fromEntries(span.attributes.map(({ key, value }) => [key, Object.values(value)[0]]))

/** A sh block's commands: `\` continuations joined, comments and blank lines left out, each with the comment above it. */
function shCommands (code) {
  const commands = []
  let comment = ''
  let current = ''
  for (const line of code.split('\n')) {
    if (current === '' && /^\s*(#|$)/.test(line)) {
      comment += line.replace(/^\s*#\s?/, '') + '\n'
      continue
    }
    current += line.endsWith('\\') ? line.slice(0, -1) : line
    if (line.endsWith('\\')) continue
    commands.push({ text: current.trim(), comment })
    current = ''
    comment = ''
  }
  return commands
}

/**
 * A documented command as it runs against `server`: its address instead of the documented one, and every
 * `NAME=…` left to the environment, which must know NAME.
 */
function localCommand (text, server, env) {
  const missing = [...text.matchAll(/\b([A-Z_]+)=…\s+/g)].map(m => m[1]).filter(name => !Object.hasOwn(env, name))
  assert.deepEqual(missing, [], `the check knows no value for ${missing.join(', ')}`)
  return text
    .replace(/\b[A-Z_]+=…\s+/g, '')
    .replaceAll('https://your.host', `http://localhost:${server.port}`)
    .replaceAll('localhost:3000', `localhost:${server.port}`)
}

/** The events a documented server logged, one line each: `app.log.info({ event }, event.name)`. */
const eventLines = server => server.logs.filter(line => line.event !== undefined && line.msg === line.event.name)

// ---- one check per block: what the documentation says the block does ----------------------------

/**
 * Each check runs its block (or what the block describes) and resolves to what it showed, or
 * throws. `lang` is the block's language; `epilogue`, code compiled after the block's own; `serial`,
 * run after all the others, alone (the others run at once); `ownProgram`, compiled in a tsc program
 * of its own (its `declare module` would change the others' types).
 */
const CHECKS = {
  usage: {
    lang: 'ts',
    async run ({ dir, kit, out }) {
      // The secrets from the environment; without them the registration fails, naming the option.
      const bare = await run(process.execPath, [out], { cwd: dir, env: { EDIS_CALLBACK_PW: '', VOX_API_KEY: '', VOX_SALT: '' } })
      assert.notEqual(bare.code, 0, 'without secrets the app must not start')
      assert.match(bare.stderr, /FST_PROVIDER_CALLBACKS_INVALID_OPTION/, bare.stderr)
      assert.match(bare.stderr, /edis\.credentials\[0\]\.password must be a non-empty string/, bare.stderr)

      const secret = { apiKey: 'readme-api-key', salt: 'readme-salt' }
      return await withServer(out, { cwd: dir, env: { EDIS_CALLBACK_PW: 'readme-pw', VOX_API_KEY: secret.apiKey, VOX_SALT: secret.salt } }, async server => {
        const edis = await post(`${server.url}/callbacks/edis`, kit.edisTrafficBody(), {
          'content-type': 'application/x-www-form-urlencoded', authorization: basic('hook', 'readme-pw')
        })
        assert.equal(edis.status, 403, `EDIS from 127.0.0.1 is outside allowedIps: ${edis.text}`)
        const items = [
          kit.voximplantCallback('min_balance', { balance: 0.42 }, secret),
          kit.voximplantCallback('sms_inbound', secret),
          unknownItem(kit, secret, 'brand_new_type')
        ]
        const answer = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch(items))
        assert.equal(answer.status, 200, answer.text)
        await server.waitFor(() => server.logs.some(line => line.msg === 'callback audited' && line.name === 'brand-new-type'), 'audit of the unknown type')
        assert.deepEqual(server.logs.filter(line => line.msg === 'callback audited').map(line => [line.name, line.id]),
          items.map(item => [item.type.replaceAll('_', '-'), `voximplant:${item.account_id}:${item.callback_id}`]))
        assert.deepEqual(server.logs.filter(line => line.msg === 'balance low').map(({ accountId, balance }) => ({ accountId, balance })),
          [{ accountId: items[0].account_id, balance: 0.42 }])
        const sms = items[1].sms_inbound.sms_inbound
        assert.deepEqual(server.logs.filter(line => line.msg === 'SMS stored').map(({ from, text }) => ({ from, text })),
          [{ from: sms.source_number, text: sms.sms_body }])
        assert.deepEqual(server.logs.filter(line => /does not know/.test(line.msg)).map(line => line.type), ['brand_new_type'])
        return 'without its secrets it fails to start (INVALID_OPTION, edis.credentials); with them it listens, EDIS from 127.0.0.1 -> 403 (allowedIps), ' +
          'a signed batch of min_balance, sms_inbound and an unknown type -> 200: alertFinance, inbox.store, audit.log for all three in order, the unknown type warned'
      })
    }
  },

  local: {
    lang: 'js',
    async run ({ dir, kit }) {
      return await withServer('local.mjs', { cwd: dir }, async server => {
        const edis = await post(`${server.url}/callbacks/edis`, kit.edisTrafficBody({ trigger_value: 90 }), {
          'content-type': 'application/x-www-form-urlencoded', authorization: basic('hook', LOCAL.EDIS_CALLBACK_PW)
        })
        assert.equal(edis.status, 200, edis.text)
        const item = kit.voximplantCallback('min_balance', { apiKey: LOCAL.VOX_API_KEY, salt: LOCAL.VOX_SALT })
        const vox = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([item]))
        assert.equal(vox.status, 200, vox.text)
        await server.waitFor(() => eventLines(server).length >= 2, 'log line of each event')
        assert.deepEqual(eventLines(server).map(line => [line.event.name, line.event.payload.kvm ?? line.event.payload.callback_id]),
          [['traffic-threshold', 'kvm_123456_789012'], ['min-balance', item.callback_id]])
        return 'runs as plain JavaScript (node local.mjs): EDIS from 127.0.0.1 with its credentials -> 200, a Voximplant callback signed with its secret -> 200, each event logged'
      })
    }
  },

  'local-sh': {
    lang: 'sh',
    async run ({ dir, block }) {
      const [start, ...commands] = shCommands(block.code)
      const file = /^node (\S+)/.exec(start?.text ?? '')?.[1]
      assert.ok(file !== undefined && existsSync(join(dir, file)), `the block starts with \`node <a file a block gives>\`, not ${start?.text}`)
      return await withServer(file, { cwd: dir }, async server => {
        for (const [i, { text }] of commands.entries()) {
          const result = await run('bash', ['-c', localCommand(text, server, {})], { cwd: dir })
          assert.equal(result.code, 0, `${text}\n${result.stdout}${result.stderr}`)
          assert.match(result.stdout, /-> 2\d\d |"status":"success"/, `${text}: ${result.stdout}`)
          await server.waitFor(() => eventLines(server).length >= i + 1, `event logged for \`${text}\``)
        }
        assert.equal(eventLines(server).length, commands.length, server.output())
        return `\`node ${file}\`, then ${commands.length} commands (provider-callbacks, curl) -> success, an event logged for each`
      })
    }
  },

  redis: {
    lang: 'ts',
    async run ({ dir, kit, out, consumerRequire, redisUrl }) {
      const secret = { apiKey: 'readme-api-key', salt: 'readme-salt' }
      const env = { VOX_API_KEY: secret.apiKey, VOX_SALT: secret.salt }
      const shown = []

      // Up: a callback delivered twice runs once, and Redis holds it as done.
      const url = redisUrl
      const { Redis } = consumerRequire('ioredis')
      const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
      redis.on('error', () => {})
      const up = await redis.connect().then(() => true, () => false)
      if (up) {
        const item = kit.voximplantCallback('min_balance', secret)
        const key = `myapp:callbacks:voximplant:${item.account_id}:${item.callback_id}`
        try {
          await withServer(out, { cwd: dir, env: { ...env, REDIS_URL: url } }, async server => {
            // The app connects before it listens: its very first callback is stored, not a 503.
            const first = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([item]))
            assert.equal(first.status, 200, `the first callback, as soon as the app listens: ${first.text}`)
            const again = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([item]))
            assert.equal(again.status, 200, again.text)
            assert.deepEqual(server.logs.filter(line => line.msg === 'low balance, once').map(line => line.id), [`voximplant:${item.account_id}:${item.callback_id}`])
            assert.equal(await redis.get(key), 'done')
          })
        } finally {
          await redis.del(key)
          redis.disconnect()
        }
        shown.push(`with Redis at ${url}: a callback delivered twice -> 200, 200, its handler ran once, ${key.replace(/\d+$/, '<id>')} is done`)
      } else {
        redis.disconnect()
        if (process.env.CI !== undefined) throw new Error(`no Redis at ${url}, and CI is set`)
        shown.push(`SKIPPED with Redis: no Redis at ${url} (set REDIS_URL; where CI is set this fails)`)
      }

      // Down: 503s, no handler, the reconnections' errors handled, the process alive.
      const down = `redis://127.0.0.1:${await closedPort()}`
      await withServer(out, { cwd: dir, env: { ...env, REDIS_URL: down } }, async server => {
        const answer = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([kit.voximplantCallback('min_balance', secret)]))
        assert.equal(answer.status, 503, answer.text)
        assert.equal(JSON.parse(answer.text).code, 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE')
        // Two errors logged: a reconnection failed after the first, and was handled as well.
        await server.waitFor(() => server.logs.filter(line => line.msg === 'Redis').length >= 2 || /Unhandled error event/.test(server.stderr),
          'second Redis error, logged or not')
        assert.equal(server.exit, undefined, 'the app is still running')
        assert.doesNotMatch(server.stderr, /Unhandled error event/, `ioredis had no error listener:\n${tail(server.stderr)}`)
        assert.deepEqual(server.logs.filter(line => line.msg === 'low balance, once'), [])
      })
      shown.push('with Redis down: -> 503 STORE_UNAVAILABLE, no handler ran, each failed reconnection logged, no "Unhandled error event", still serving')
      return shown.join('; ')
    }
  },

  postgres: {
    lang: 'ts',
    // Its `declare module` types every handler's context with `tx`: in a program of its own.
    ownProgram: true,
    async run ({ dir, kit, out, consumerRequire }) {
      const secret = { apiKey: 'readme-api-key', salt: 'readme-salt' }
      const env = { VOX_API_KEY: secret.apiKey, VOX_SALT: secret.salt }
      const shown = []

      // Up: in a schema of the check's own, dropped after; a callback delivered twice is written once, and done.
      const admin = await postgresOrNot(consumerRequire, PG_URL)
      if (typeof admin === 'string') {
        shown.push(`${admin.replace(/^SKIPPED/, 'SKIPPED with PostgreSQL')}`)
      } else {
        const schema = `readme_${randomBytes(6).toString('hex')}`
        try {
          await admin.query(`CREATE SCHEMA ${schema}`)
          // The app's own table, as the page describes it: no unique key on the event.
          await admin.query(`CREATE TABLE ${schema}.balance_alerts (event_id text NOT NULL, account_id bigint NOT NULL, balance numeric NOT NULL)`)
          const item = kit.voximplantCallback('min_balance', { balance: 0.42 }, secret)
          const id = `voximplant:${item.account_id}:${item.callback_id}`
          await withServer(out, { cwd: dir, env: { ...env, PG_URL: inSchema(PG_URL, schema) } }, async server => {
            const first = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([item]))
            assert.equal(first.status, 200, first.text)
            const again = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([item]))
            assert.equal(again.status, 200, again.text)
            assert.deepEqual(server.logs.filter(line => line.msg === 'balance alert recorded').map(line => line.id), [id], 'the handler ran once')
          })
          const alerts = await admin.query(`SELECT event_id, account_id::text, balance::text FROM ${schema}.balance_alerts`)
          assert.deepEqual(alerts.rows, [{ event_id: id, account_id: String(item.account_id), balance: '0.42' }], 'the handler\'s row, once')
          const events = await admin.query(`SELECT key, owner, done, expires_at > clock_timestamp() AS live FROM ${schema}.provider_callbacks_events`)
          assert.deepEqual(events.rows, [{ key: id, owner: null, done: true, live: true }], 'the event\'s row, done (the table made on first use)')
          shown.push(`with PostgreSQL at ${PG_URL}, in a schema of its own (dropped after): a callback delivered twice -> 200, 200, its handler ran once, ` +
            'its balance_alerts row written once, the event\'s provider_callbacks_events row done (the table made on first use)')
        } finally {
          // The server has stopped; a session it left would hold what DROP SCHEMA waits for.
          await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [schema]).catch(() => {})
          await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
          await admin.end()
        }
      }

      // Down: 503s, no handler, the process alive.
      const down = `postgres://root@127.0.0.1:${await closedPort()}/test`
      await withServer(out, { cwd: dir, env: { ...env, PG_URL: down } }, async server => {
        const answer = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([kit.voximplantCallback('min_balance', secret)]))
        assert.equal(answer.status, 503, answer.text)
        assert.equal(JSON.parse(answer.text).code, 'FST_PROVIDER_CALLBACKS_STORE_UNAVAILABLE')
        assert.equal(server.exit, undefined, 'the app is still running')
        assert.deepEqual(server.logs.filter(line => line.msg === 'balance alert recorded'), [])
      })
      shown.push('with PostgreSQL down: -> 503 STORE_UNAVAILABLE, no handler ran, still serving')
      return shown.join('; ')
    }
  },

  telemetry: {
    lang: 'ts',
    async run ({ dir, kit, out }) {
      const secret = { apiKey: 'readme-api-key', salt: 'readme-salt' }
      const collector = await otlpCollector()
      const metricsPort = await closedPort()
      try {
        return await withServer(out, {
          cwd: dir,
          env: { VOX_API_KEY: secret.apiKey, VOX_SALT: secret.salt, METRICS_PORT: String(metricsPort), OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '50' }
        }, async server => {
          const item = kit.voximplantCallback('min_balance', secret)
          const answer = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([item]))
          assert.equal(answer.status, 200, answer.text)
          const forged = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([kit.voximplantCallback('min_balance', { apiKey: 'not the key' })]))
          assert.equal(forged.status, 401, forged.text)
          const id = `voximplant:${item.account_id}:${item.callback_id}`

          // The spans, at the collector: the event's in the 200's trace, none in the 401's.
          const requests = await poll(() => {
            const found = collector.spans.filter(span => span.scope === '@fastify/otel' && span.name === 'request')
            return found.length >= 2 && collector.spans.some(span => span.name === 'process voximplant') && found
          }, 'request spans and an event span at the collector')
          const events = collector.spans.filter(span => span.scope === 'fastify-provider-callbacks')
          assert.equal(events.length, 1, JSON.stringify(events))
          const [event] = events
          assert.deepEqual(otlpAttributes(event), {
            'messaging.system': 'provider_callbacks',
            'messaging.operation.type': 'process',
            'messaging.operation.name': 'process',
            'messaging.destination.name': 'voximplant',
            'messaging.message.id': id,
            'provider_callbacks.event.name': 'min-balance',
            'provider_callbacks.event.known': true,
            'provider_callbacks.outcome': 'delivered'
          })
          const status = span => otlpAttributes(span)['http.response.status_code']
          const ok = requests.find(span => Number(status(span)) === 200)
          const refused = requests.find(span => Number(status(span)) === 401)
          assert.ok(ok !== undefined && refused !== undefined, JSON.stringify(requests.map(otlpAttributes)))
          assert.equal(event.traceId, ok.traceId, 'the event span is in the request\'s trace')
          assert.ok(!collector.spans.some(span => span.traceId === refused.traceId && span.scope === 'fastify-provider-callbacks'), 'no event span for the 401')
          const exported = JSON.stringify(collector.spans)
          for (const value of [secret.apiKey, secret.salt, item.hash]) assert.ok(!exported.includes(value), `a span carries ${value}`)

          // The metrics, from Prometheus.
          const text = await poll(async () => {
            const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
            return /provider_callbacks_requests_refused_total\{/.test(body) && body
          }, 'metrics at /metrics')
          assert.match(text, /^messaging_client_consumed_messages_total\{[^}]*provider_callbacks_outcome="delivered"[^}]*\} 1$/m, text)
          assert.match(text, /^messaging_process_duration_count\{[^}]*provider_callbacks_event_name="min-balance"[^}]*\} 1$/m, text)
          assert.match(text, /^provider_callbacks_requests_refused_total\{[^}]*http_response_status_code="401"[^}]*error_type="FST_PROVIDER_CALLBACKS_UNAUTHORIZED"[^}]*\} 1$/m, text)
          assert.ok(!text.includes(String(item.account_id)), 'no account id in a metric')
          return 'a signed callback -> 200 and a forged one -> 401; at an OTLP collector, @fastify/otel\'s request spans and one \'process voximplant\' span in the 200\'s trace ' +
            '(its attributes as docs/telemetry.md lists them), none for the 401, no secret or hash in any span; on Prometheus\'s /metrics, the event delivered, its duration and the 401 by code, no account id'
        })
      } finally {
        await collector.close()
      }
    }
  },

  inbox: {
    lang: 'ts',
    async run ({ dir, kit, out, consumerRequire, redisUrl }) {
      const secret = { apiKey: 'readme-api-key', salt: 'readme-salt' }
      const url = redisUrl
      const redis = await connectedOrNot(consumerRequire, url)
      if (typeof redis === 'string') return redis
      const item = kit.voximplantCallback('min_balance', secret)
      const id = `voximplant:${item.account_id}:${item.callback_id}`
      try {
        return await withServer(out, { cwd: dir, env: { VOX_API_KEY: secret.apiKey, VOX_SALT: secret.salt, REDIS_URL: url } }, async server => {
          const first = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([item]))
          assert.equal(first.status, 200, first.text)
          const again = await postJson(`${server.url}/callbacks/voximplant`, kit.voximplantBatch([item]))
          assert.equal(again.status, 200, again.text)
          // Its redelivery fanned out too (its received job gone), so that none is left for the next run.
          const { Queue } = consumerRequire('bullmq')
          const queue = new Queue('provider-callbacks', { connection: redis })
          try {
            await server.waitFor(() => server.logs.some(line => line.msg === 'low balance, from the inbox' && line.id === id), 'the handler, run by the worker')
            await poll(async () => (await queue.getJobs(['prioritized', 'waiting', 'active', 'delayed'])).every(job => !JSON.stringify(job.data).includes(id)), 'fan-out of every received job of it')
          } finally {
            await queue.close()
          }
          // The documented queue is shared: an event another run left there may run here too; this one runs once.
          assert.deepEqual(server.logs.filter(line => line.msg === 'low balance, from the inbox' && line.id === id).map(line => line.id), [id])
          return `with Redis at ${url}: a callback delivered twice -> 200, 200, stored once, its handler run once by the app's worker`
        })
      } finally {
        // Only this check's job, in the documented queue: the shared Redis is never flushed.
        await redis.del(`bull:provider-callbacks:${id.replaceAll('%', '%25').replaceAll(':', '%3A')}`)
        redis.disconnect()
      }
    }
  },

  'inbox-worker': {
    lang: 'ts',
    // It serves the documented queue, as the inbox example's worker does: run at once, each would
    // take the other's event.
    serial: true,
    async run ({ dir, kit, out, consumerRequire, redisUrl }) {
      const secret = { apiKey: 'readme-api-key', salt: 'readme-salt' }
      const url = redisUrl
      const redis = await connectedOrNot(consumerRequire, url)
      if (typeof redis === 'string') return redis
      // The API replica it works for, here: the plugin with the same inbox and `worker: false`.
      const fastify = consumerRequire('fastify')
      const plugin = consumerRequire('fastify-provider-callbacks')
      const connection = new (consumerRequire('ioredis').Redis)(url, { maxRetriesPerRequest: null })
      connection.on('error', () => {})
      const inbox = plugin.bullmqInbox({ connection, name: 'provider-callbacks' })
      const app = fastify()
      const item = kit.voximplantCallback('min_balance', secret)
      const id = `voximplant:${item.account_id}:${item.callback_id}`
      try {
        await app.register(plugin, { voximplant: { secret }, inbox, worker: false })
        const answer = await app.inject({ method: 'POST', url: '/callbacks/voximplant', payload: kit.voximplantBatch([item]) })
        assert.equal(answer.statusCode, 200, answer.body)
        const worker = startProcess(out, { cwd: dir, env: { REDIS_URL: url } })
        try {
          await worker.waitFor(() => worker.stdout.includes(`low balance: ${id}\n`), 'line of the handler, run by the worker process')
          worker.child.kill('SIGTERM')
          await worker.exited
          assert.equal(worker.exit, 0, `on SIGTERM the worker closes and exits 0\n${worker.output()}`)
          assert.equal(worker.stderr, '', 'nothing on stderr')
        } finally {
          await worker.stop()
        }
        assert.equal(worker.stdout.split('\n').filter(line => line === `low balance: ${id}`).length, 1, worker.output())
        return `with Redis at ${url}: a callback stored by an API replica (the plugin with worker: false) -> 200, its handler run once by the worker process; ` +
          'SIGTERM: the worker, the inbox and the connection closed, exit code 0, nothing on stderr'
      } finally {
        await app.close()
        await inbox.close()
        connection.disconnect()
        // Only this check's job, in the documented queue: the shared Redis is never flushed.
        await redis.del(`bull:provider-callbacks:${id.replaceAll('%', '%25').replaceAll(':', '%3A')}`)
        redis.disconnect()
      }
    }
  },

  'inbox-dashboard': {
    lang: 'ts',
    async run () {
      return 'compiles against bullmq, @bull-board/api and @bull-board/fastify: the inbox\'s queue is what BullMQAdapter takes'
    }
  },

  'own-store': {
    lang: 'ts',
    // The listing is the package's types, to the letter of their signatures.
    epilogue: `
import type * as Package from 'fastify-provider-callbacks'
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
export const sameStore: Equal<IdempotencyStore, Package.IdempotencyStore> = true
export const sameMaybePromise: Equal<MaybePromise<string>, Package.MaybePromise<string>> = true
`,
    async run () {
      return 'a listing: compiles, and its IdempotencyStore and MaybePromise are exactly the package\'s (an Equal type assertion)'
    }
  },

  provision: {
    lang: 'ts',
    async run () {
      // Run here, it would call the real EDIS and Voximplant: test/readme-setup.test.ts runs it, and
      // the section's sh commands, against fake APIs.
      return 'compiles against the package\'s types; run against fake APIs by test/readme-setup.test.ts'
    }
  },

  'test-kit': {
    lang: 'ts',
    async run ({ dir, block, out }) {
      const tests = block.code.match(/^test\(/gm)?.length ?? 0
      const result = await run(process.execPath, ['--test', '--test-reporter=tap', out], { cwd: dir })
      const output = result.stdout + result.stderr
      assert.equal(result.code, 0, output)
      assert.match(output, new RegExp(`^# pass ${tests}$`, 'm'), output)
      assert.match(output, /^# fail 0$/m, output)
      return `its node:test file runs: ${tests} of ${tests} tests pass`
    }
  },

  cli: {
    lang: 'sh',
    async run ({ dir, block }) {
      return await withServer('local.mjs', { cwd: dir }, async server => {
        const shown = []
        for (const { text, comment } of shCommands(block.code)) {
          const result = await run('bash', ['-c', localCommand(text, server, LOCAL)], { cwd: dir, env: LOCAL })
          const output = `${text}\n${result.stdout}${result.stderr}`
          assert.equal(result.code, 0, output)
          // What the comment above a command quotes, the command prints.
          for (const [, quoted] of comment.matchAll(/"([^"]+)"/g)) assert.ok(result.stdout.includes(quoted), `prints "${quoted}"\n${output}`)
          const count = Number(/--count (\d+)/.exec(text)?.[1] ?? 1)
          const requests = Math.ceil(count / Number(/--batch (\d+)/.exec(text)?.[1] ?? 1))
          const listed = result.stdout.split('\n').filter(line => / -> \d{3} /.test(line))
          if (requests > CLI_LISTS_UP_TO) {
            assert.deepEqual(listed, [], `above ${CLI_LISTS_UP_TO} requests, only failures are listed\n${output}`)
            assert.equal(result.stderr.split('\n').filter(line => /^sent \d+\/\d+ callbacks/.test(line)).length, 10, `a progress line at each tenth\n${output}`)
            assert.ok(result.stderr.includes(`sent ${count}/${count} callbacks (100%)`), output)
            shown.push(`${count} callbacks in ${requests} requests: no answer listed, 10 progress lines, the summary`)
          } else {
            assert.equal(listed.length, requests, output)
            assert.ok(listed.every(line => / -> 2\d\d /.test(line)), output)
            shown.push(`${requests} answer${requests === 1 ? '' : 's'} listed, 2xx`)
          }
        }
        return `against README's local app (local.mjs): ${shown.join('; ')}`
      })
    }
  }
}

// ---- the whole check -----------------------------------------------------------------------------

function tsconfig (files) {
  return JSON.stringify({
    compilerOptions: {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      // The package's own declarations are checked by check-package.mjs; here, the documentation's code.
      skipLibCheck: true,
      types: ['node'],
      outDir: 'out',
      rootDir: '.'
    },
    files
  }, null, 2)
}

/** tsc's errors, by block id, each at its file's line (or the epilogue's line it is on), with its continuation lines. */
function compileErrors (output, blocks) {
  const byId = new Map()
  const other = []
  let last
  for (const line of output.split('\n')) {
    const m = /^(?:readme\/)?([\w-]+)\.mts\((\d+),(\d+)\): (.*)$/.exec(line)
    const block = m && blocks.find(b => b.id === m[1])
    if (!block) {
      if (/^\s/.test(line) && last !== undefined) last.push(line)
      else if (line.trim() !== '') other.push(line)
      continue
    }
    const codeLines = block.code.split('\n').length - 1
    const where = Number(m[2]) <= codeLines
      ? `${block.file}:${block.fenceLine + Number(m[2])}:${m[3]}`
      : `the check's epilogue, at \`${(CHECKS[block.id].epilogue ?? '').split('\n')[Number(m[2]) - codeLines - 1]?.trim()}\``
    last = byId.get(block.id) ?? []
    last.push(`${where}: ${m[4]}`)
    byId.set(block.id, last)
  }
  return { byId, other }
}

/**
 * Checks the examples of README.md, docs/*.md, bench/README.md and CONTRIBUTING.md (`files`, paths
 * from `root`) in `consumerDir` (where the package's tarball, fastify@5, typescript@5.9,
 * @types/node@20, ioredis@5, bullmq@6, @bull-board 9 and pg@8 are installed), in consumerDir/readme/.
 * Calls `report(ok, what, output?)` once per block, and for what concerns no one block; resolves to
 * the number of failures.
 */
export async function checkReadme ({ consumerDir, report, root = ROOT, files = docFiles(root) }) {
  let failures = 0
  const fail = (what, output) => { failures++; report(false, what, output) }
  const blocks = files.flatMap(file => readmeBlocks(readFileSync(join(root, file), 'utf8'), file))
  const problems = markerProblems(blocks)
  if (problems.length > 0) fail(`${files.join(', ')}: every ts and js block has a readme-check marker, and every marker its check`, problems.join('\n'))
  const checked = blocks.filter(block => block.id !== undefined && Object.hasOwn(CHECKS, block.id) && CHECKS[block.id].lang === block.lang)
  // An id used twice is a problem above; its second block is not run over the first's file.
  const unique = checked.filter((block, i) => checked.findIndex(other => other.id === block.id) === i)
  const compiled = unique.filter(block => block.lang !== 'sh')

  const dir = join(consumerDir, 'readme')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir)
  for (const block of compiled) {
    // `export {}`: a module even if the block imports nothing, so that blocks do not share globals.
    writeFileSync(join(dir, `${block.id}.mts`), block.code + (CHECKS[block.id].epilogue ?? '') + '\nexport {}\n')
    if (block.lang === 'js') writeFileSync(join(dir, `${block.id}.mjs`), block.code)
  }
  // One program for the blocks, and one of its own for each block whose check asks (ownProgram).
  const shared = compiled.filter(block => CHECKS[block.id].ownProgram !== true)
  const programs = [{ config: 'tsconfig.json', blocks: shared }, ...compiled.filter(block => CHECKS[block.id].ownProgram === true)
    .map(block => ({ config: `tsconfig.${block.id}.json`, blocks: [block] }))]
  const byId = new Map()
  await Promise.all(programs.map(async ({ config, blocks }) => {
    writeFileSync(join(dir, config), tsconfig(blocks.map(block => `${block.id}.mts`)))
    const tsc = await run(process.execPath, [join(consumerDir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config, '--pretty', 'false'], { cwd: dir })
    const errors = compileErrors(tsc.stdout + tsc.stderr, blocks)
    for (const [id, lines] of errors.byId) byId.set(id, lines)
    if (tsc.code !== 0 && errors.byId.size === 0) fail(`tsc over ${blocks.length === 1 ? `the block ${blocks[0].id}` : 'the blocks'} (${config})`, errors.other.join('\n'))
  }))

  const consumerRequire = createRequire(join(consumerDir, 'package.json'))
  const kit = consumerRequire('fastify-provider-callbacks/testing')
  const redis = await examplesRedis()
  const compiledNote = block => block.lang === 'sh' ? '' : 'compiles (strict, nodenext); '
  const check = async block => {
    const name = `${at(block)} (readme-check: ${block.id})`
    if (byId.has(block.id)) {
      fail(`${name}: does not compile`, byId.get(block.id).join('\n'))
      return
    }
    try {
      const shown = await CHECKS[block.id].run({ dir, block, kit, consumerRequire, redisUrl: redis.url, out: join('out', `${block.id}.mjs`) })
      report(true, `${name}: ${compiledNote(block)}${shown}`)
    } catch (error) {
      fail(`${name}: ${compiledNote(block)}but its run fails`, error.stack ?? String(error))
    }
  }
  await Promise.all(unique.filter(block => CHECKS[block.id].serial !== true).map(check))
  for (const block of unique.filter(block => CHECKS[block.id].serial === true)) await check(block)
  await redis.stop()
  return failures
}

// By hand: node scripts/check-readme.mjs <consumerDir>
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const consumerDir = process.argv[2]
  if (consumerDir === undefined || !existsSync(join(consumerDir, 'node_modules', 'fastify-provider-callbacks'))) {
    console.error('Usage: node scripts/check-readme.mjs <consumerDir>\n  a project with the packed package and what check-package.mjs installs beside it (see the top of this file);\n' +
      '  KEEP_PACKAGE_CHECK_DIRS=1 npm run test:package keeps the one it made')
    process.exitCode = 2
  } else {
    const started = Date.now()
    const failures = await checkReadme({
      consumerDir: resolve(consumerDir),
      report (ok, what, output) {
        console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
        if (output !== undefined && output.trim() !== '') console.log(output.trim().split('\n').map(line => `    ${line}`).join('\n'))
      }
    })
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    console.log(failures === 0 ? `check-readme: every block passed in ${seconds}s` : `check-readme: ${failures} failed in ${seconds}s`)
    process.exitCode = failures === 0 ? 0 : 1
  }
}
