// Checks the package as users get it: copies the repository's files as a fresh clone has them (no
// dist/), packs that copy with nothing built beforehand (so the package's own scripts must build it,
// as they must for `npm publish` and for an install from git), runs @arethetypeswrong/cli and publint
// on the tarball, installs the tarball in an empty project and uses it from ESM, from CJS, from
// TypeScript (nodenext, .mts and .cts) and through `npx`. Prints a line per check; exits 1 if any fails.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkReadme } from './check-readme.mjs'

const started = Date.now()
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const failed = []

/** Runs a command; resolves with its exit code and output, never rejects. */
function run (command, args, cwd, env = {}) {
  return new Promise(resolve => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...env } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
        resolve({ code, stdout, stderr, output: `${stdout}${stderr}${error !== null && typeof error.code !== 'number' ? error.message : ''}` })
      })
  })
}

/** A local devDependency's CLI, run by this node (no shell, no .cmd shims). */
function localBin (pkg, name) {
  const dir = join(root, 'node_modules', ...pkg.split('/'))
  const { bin } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  return [process.execPath, join(dir, typeof bin === 'string' ? bin : bin[name])]
}

// npm sets npm_execpath for scripts it runs; outside npm, fall back to the npm on PATH.
const npm = process.env.npm_execpath?.endsWith('.js') ? [process.execPath, process.env.npm_execpath] : ['npm']

function indent (text, max = 60) {
  const lines = text.trim().split('\n')
  const shown = lines.length > max ? [...lines.slice(0, max), `... ${lines.length - max} more lines`] : lines
  return shown.map(line => `    ${line}`).join('\n')
}

function report (ok, what, output) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) failed.push(what)
  if (output !== undefined && output.trim() !== '') console.log(indent(output))
}

const npmEnvNoise = /^npm warn Unknown (user|project|env) config .*\n/gm

// ---- the consumer project's files ----------------------------------------------------------------

const FORM_POST = `{
    method: 'POST',
    url: '/callbacks/edis',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'kvm=kvm_1&details=x&trigger_value=80'
  }`

// Registers `plugin` with { edis: {} }, posts one EDIS callback and checks the handler got it.
const JS_ROUND_TRIP = `
async function roundTrip (plugin) {
  const app = Fastify()
  await app.register(plugin, { edis: {} })
  const received = []
  app.providerCallbacks.on('traffic-threshold', event => { received.push(event) })
  const response = await app.inject(${FORM_POST})
  await app.close()
  assert.equal(response.statusCode, 200, response.body)
  assert.equal(received.length, 1)
  assert.equal(received[0].name, 'traffic-threshold')
  assert.deepEqual({ ...received[0].payload }, { kvm: 'kvm_1', details: 'x', trigger_value: 80 })
}
`

// The test kit from its own entry point: a signed batch it builds is accepted by the plugin.
const KIT_ROUND_TRIP = `
async function kitRoundTrip (plugin, kit) {
  const secret = { apiKey: 'k', salt: 's' }
  const app = Fastify()
  await app.register(plugin, { voximplant: { secret } })
  app.providerCallbacks.on('min-balance', () => {})
  const result = await kit.deliver(app, kit.voximplantBatch([kit.voximplantCallback('min_balance', secret)]))
  await app.close()
  assert.equal(result.statusCode, 200, JSON.stringify(result.body))
  assert.deepEqual(result.events.map(e => e.name), ['min-balance'])
}
`

// What docs/telemetry.md's example installs beside the package (scripts/check-readme.mjs runs it).
const OTEL_PACKAGES = ['@opentelemetry/api@1', '@opentelemetry/sdk-node@0.301', '@opentelemetry/exporter-prometheus@0.301',
  '@opentelemetry/exporter-trace-otlp-http@0.301', '@fastify/otel@0.21']

const ESM_JS = `import assert from 'node:assert/strict'
import Fastify from 'fastify'
import providerCallbacks, { providerCallbacks as named } from 'fastify-provider-callbacks'
import * as namespace from 'fastify-provider-callbacks'
import * as kit from 'fastify-provider-callbacks/testing'
${JS_ROUND_TRIP}
${KIT_ROUND_TRIP}
assert.equal(typeof providerCallbacks, 'function')
assert.equal(named, providerCallbacks)
assert.equal(namespace.default, providerCallbacks)
assert.equal(typeof namespace.InvalidOptionError, 'function')
// @opentelemetry/api is an optional peer: not installed here, and the plugin works without it.
await assert.rejects(import('@opentelemetry/api'), { code: 'ERR_MODULE_NOT_FOUND' })
await roundTrip(providerCallbacks)
await roundTrip(named)
await kitRoundTrip(providerCallbacks, kit)
`

const CJS_JS = `'use strict'
const assert = require('node:assert/strict')
const Fastify = require('fastify')
const providerCallbacks = require('fastify-provider-callbacks')
${JS_ROUND_TRIP}
${KIT_ROUND_TRIP}
async function main () {
  assert.equal(typeof providerCallbacks, 'function', 'require() returns the plugin function')
  assert.equal(providerCallbacks.__esModule, true)
  assert.equal(require('fastify-provider-callbacks').default, providerCallbacks)
  assert.equal(providerCallbacks.providerCallbacks, providerCallbacks)
  const esm = await import('fastify-provider-callbacks')
  assert.deepEqual(Object.keys(esm).filter(name => !(name in providerCallbacks)), [], 'ESM exports missing from require()')
  await roundTrip(require('fastify-provider-callbacks'))
  await roundTrip(require('fastify-provider-callbacks').default)
  await kitRoundTrip(providerCallbacks, require('fastify-provider-callbacks/testing'))
}
main().catch(error => { console.error(error); process.exitCode = 1 })
`

// The typed round trip; every annotation and @ts-expect-error is part of the check.
const TS_ROUND_TRIP = `
async function roundTrip (plugin: typeof providerCallbacks, options: ProviderCallbacksOptions): Promise<void> {
  const app = Fastify()
  await app.register(plugin, options)
  const triggers: Array<number | 'demo'> = []
  app.providerCallbacks.on('traffic-threshold', e => {
    const n: number | 'demo' = e.payload.trigger_value
    const kvm: string = e.payload.kvm
    // @ts-expect-error trigger_value is number | 'demo', so it is typed (not any)
    const s: string = e.payload.trigger_value
    triggers.push(n)
    void kvm
    void s
  })
  app.providerCallbacks.on('min-balance', e => {
    const repeated: boolean = e.payload.min_balance.is_repeated
    // @ts-expect-error is_repeated is a boolean, so it is typed (not any)
    const wrong: string = e.payload.min_balance.is_repeated
    void repeated
    void wrong
  })
  assert.throws(() => {
    // @ts-expect-error 'traffic-treshold' is a typo, not an event name
    app.providerCallbacks.on('traffic-treshold', () => {})
  }, { code: 'FST_PROVIDER_CALLBACKS_INVALID_OPTION' })
  // @ts-expect-error the events class's internals are not part of the public type
  void app.providerCallbacks.deliver
  const response = await app.inject(${FORM_POST})
  await app.close()
  assert.equal(response.statusCode, 200, response.body)
  assert.deepEqual(triggers, [80])
}
`

const ESM_TS = `import assert from 'node:assert/strict'
import Fastify from 'fastify'
import providerCallbacks, { providerCallbacks as named, type ProviderCallbacksOptions } from 'fastify-provider-callbacks'
import { voximplantCallback } from 'fastify-provider-callbacks/testing'
${TS_ROUND_TRIP}
// The kit's items are typed by their type's schema.
const repeated: boolean = voximplantCallback('min_balance', { apiKey: 'k' }).min_balance.is_repeated
void repeated
await roundTrip(providerCallbacks, { edis: {} })
await roundTrip(named, { edis: {} })
`

const CJS_TS = `import assert from 'node:assert/strict'
import Fastify from 'fastify'
import providerCallbacks from 'fastify-provider-callbacks'
import type { ProviderCallbacksOptions } from 'fastify-provider-callbacks'
import required = require('fastify-provider-callbacks')
import { edisTrafficBody } from 'fastify-provider-callbacks/testing'
${TS_ROUND_TRIP}
const body: string = edisTrafficBody({ trigger_value: 'demo' }, { encoding: 'raw' })
void body
async function main (): Promise<void> {
  // require()'s result is the plugin, and carries the types and values as a namespace.
  const options: required.ProviderCallbacksOptions = { edis: {} }
  const handler: required.ProviderCallbackHandler<required.ProviderCallbackEvents['traffic-threshold']> = () => {}
  assert.equal(required, providerCallbacks)
  assert.equal(required.default, providerCallbacks)
  assert.equal(typeof required.InvalidOptionError, 'function')
  const app = Fastify()
  await app.register(required, { ...options, handlers: { 'traffic-threshold': handler } })
  await app.close()
  await roundTrip(providerCallbacks, options)
  await roundTrip(required, options)
}
main().catch(error => { console.error(error); process.exitCode = 1 })
`

// Without skipLibCheck, so errors in our .d.ts count. One program per module format, and one with
// both: a project that mixes .mts and .cts sees `FastifyInstance.providerCallbacks` declared by both
// builds, which must agree (the dual-package hazard, in types).
function tsconfig (...files) {
  return JSON.stringify({
    compilerOptions: {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      strict: true,
      skipLibCheck: false,
      types: ['node'],
      outDir: 'out',
      rootDir: '.'
    },
    files
  }, null, 2)
}

// ---- the checks ----------------------------------------------------------------------------------

const temps = []
function tempDir (name) {
  const dir = mkdtempSync(join(tmpdir(), `fastify-provider-callbacks-${name}-`))
  temps.push(dir)
  return dir
}

/**
 * The files a clone gets, in a folder of their own: HEAD's, or, when the working tree differs from
 * it, the tree `git add -A` would commit (tracked changes and new files .gitignore lets in), so a
 * developer's `npm test` checks what they are about to commit; CI's clean checkout is HEAD itself.
 * Written from a throwaway index, so the repository's own index is not touched.
 */
async function cleanCopy () {
  const git = async (args, env) => {
    const result = await run('git', args, root, env)
    if (result.code !== 0) throw new Error(`git ${args.join(' ')}: ${result.output}`)
    return result.stdout.trim()
  }
  const index = { GIT_INDEX_FILE: join(tempDir('index'), 'index') }
  await git(['read-tree', 'HEAD'], index)
  await git(['add', '--all'], index)
  const tree = await git(['write-tree'], index)
  const head = await git(['rev-parse', '--short', 'HEAD'])
  const changed = tree === await git(['rev-parse', 'HEAD^{tree}']) ? '' : await git(['diff-tree', '-r', '--name-status', 'HEAD', tree])
  const copy = tempDir('clone')
  await git(['checkout-index', '--all', `--prefix=${copy}/`], index)
  // The devDependencies the build needs, as installed here from the same lockfile: `npm ci` in the
  // copy would take longer than the rest of the check.
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'junction')
  return { copy, head, changed }
}

async function main () {
  const { copy, head, changed } = await cleanCopy()
  const built = existsSync(join(copy, 'dist'))
  report(!built, changed === ''
    ? `a fresh copy of HEAD (${head}), without dist/`
    : `a fresh copy of the working tree as \`git add -A\` would commit it, without dist/; it differs from HEAD (${head}) in`,
  built ? 'dist/ is in git: the check would not show that packing builds it' : changed)
  if (built) return

  // npm pack in the copy, and what the tarball holds
  const packDir = tempDir('pack')
  const pack = await run(npm[0], [...npm.slice(1), 'pack', '--json', '--pack-destination', packDir], copy)
  if (pack.code !== 0) {
    report(false, 'npm pack in the copy (its prepare script builds dist/)', pack.output)
    return
  }
  const [{ filename, files }] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('[')))
  const tarball = join(packDir, filename)
  const paths = files.map(file => file.path)
  const unexpected = paths.filter(path => !/^(dist\/.+|bin\/provider-callbacks\.js|testing\/package\.json|package\.json|README\.md|LICENSE)$/.test(path) || /\.(map|tsbuildinfo)$/.test(path))
  const required = ['package.json', 'LICENSE', 'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/package.json', 'dist/esm/testing.js', 'dist/cjs/testing.js', 'testing/package.json', 'bin/provider-callbacks.js']
  const absent = required.filter(path => !paths.includes(path))
  const noDist = !paths.some(path => path.startsWith('dist/'))
  report(unexpected.length === 0 && absent.length === 0,
    `npm pack: ${filename}, ${paths.length} files (${noDist ? 'no dist/' : 'dist/ built by packing'}, package.json, LICENSE${paths.includes('README.md') ? ', README.md' : '; no README.md yet'})`,
    [noDist ? 'no dist/ at all: packing a clone did not build it (the prepare script)' : '',
      unexpected.length > 0 ? `unexpected: ${unexpected.join(', ')}` : '', absent.length > 0 ? `missing: ${absent.join(', ')}` : ''].filter(Boolean).join('\n'))
  if (noDist) return

  // attw, publint and the consumer project's install run side by side
  const consumer = tempDir('consumer')
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '0.0.0', private: true }, null, 2))
  const attwBin = localBin('@arethetypeswrong/cli', 'attw')
  const publintBin = localBin('publint', 'publint')
  const [attw, publint, install] = await Promise.all([
    run(attwBin[0], [attwBin[1], tarball, '--format', 'table', '--no-color', '--no-emoji'], root),
    run(publintBin[0], [publintBin[1], 'run', tarball], root),
    run(npm[0], [...npm.slice(1), 'install', tarball, 'fastify@5', 'typescript@5.9', '@types/node@20', 'ioredis@5', 'bullmq@6', '@bull-board/api@9.10.1', '@bull-board/fastify@9.10.1',
      'pg@8', '@types/pg@8', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], consumer)
  ])
  report(attw.code === 0, 'attw: no problems for node10, node16 (CJS), node16 (ESM) and bundler', attw.output)
  const publintText = publint.output.replace(/^(Running publint|Unpacking tarball|Linting).*\n/gm, '')
  report(publint.code === 0, `publint: ${publintText.trim() === 'All good!' ? 'all good' : 'no errors'}`,
    publintText.trim() === 'All good!' ? undefined : publintText)
  report(install.code === 0, `npm install <tarball> fastify@5 typescript@5.9 @types/node@20 ioredis@5 bullmq@6 @bull-board/api@9.10.1 @bull-board/fastify@9.10.1 pg@8 @types/pg@8 in an empty project, on Node ${process.version} (one @bull-board/api: the fastify adapter pins its own)`,
    install.code === 0 ? undefined : install.output.replace(npmEnvNoise, ''))
  if (install.code !== 0) return

  writeFileSync(join(consumer, 'esm.mjs'), ESM_JS)
  writeFileSync(join(consumer, 'cjs.cjs'), CJS_JS)
  writeFileSync(join(consumer, 'types-esm.mts'), ESM_TS)
  writeFileSync(join(consumer, 'types-cjs.cts'), CJS_TS)
  writeFileSync(join(consumer, 'tsconfig.esm.json'), tsconfig('types-esm.mts'))
  writeFileSync(join(consumer, 'tsconfig.cjs.json'), tsconfig('types-cjs.cts'))
  writeFileSync(join(consumer, 'tsconfig.mixed.json'), tsconfig('types-esm.mts', 'types-cjs.cts'))
  const tsc = join(consumer, 'node_modules', 'typescript', 'bin', 'tsc')
  const [esm, cjs, esmTypes, cjsTypes, mixedTypes] = await Promise.all([
    run(process.execPath, ['esm.mjs'], consumer),
    run(process.execPath, ['cjs.cjs'], consumer),
    run(process.execPath, [tsc, '-p', 'tsconfig.esm.json'], consumer),
    run(process.execPath, [tsc, '-p', 'tsconfig.cjs.json'], consumer),
    run(process.execPath, [tsc, '-p', 'tsconfig.mixed.json', '--noEmit'], consumer)
  ])
  report(esm.code === 0, 'ESM: `import providerCallbacks, { providerCallbacks as named }` register, POST /callbacks/edis -> 200, handler called; the /testing kit builds a batch the plugin accepts', esm.output)
  report(cjs.code === 0, 'CJS: `require(...)` and `require(...).default` register, POST /callbacks/edis -> 200, handler called; every ESM export on it; require(\'…/testing\') works', cjs.output)
  report(esmTypes.code === 0, 'TypeScript nodenext .mts: default and named imports type-check, typed payload, typo is an error', esmTypes.output)
  report(cjsTypes.code === 0, 'TypeScript nodenext .cts: default import and import = require type-check, typed payload, typo is an error', cjsTypes.output)
  report(mixedTypes.code === 0, 'TypeScript: one program with both the .mts and the .cts type-checks (the two builds\' types agree)', mixedTypes.output)
  if (esmTypes.code !== 0 || cjsTypes.code !== 0) return

  // tsc's own output of those files, run: TS-compiled default imports work at runtime too
  const [esmTs, cjsTs] = await Promise.all([
    run(process.execPath, [join('out', 'types-esm.mjs')], consumer),
    run(process.execPath, [join('out', 'types-cjs.cjs')], consumer)
  ])
  // The command-line tool, installed through the package's bin; `--yes=false`: never one from the registry
  const npx = [...npm, 'exec', '--yes=false', '--', 'provider-callbacks']
  const [help, cliVersion] = await Promise.all([
    run(npx[0], [...npx.slice(1), 'send', 'voximplant', '--help'], consumer),
    run(npx[0], [...npx.slice(1), '--version'], consumer)
  ])
  report(help.code === 0 && help.stdout.includes('--api-key') && cliVersion.stdout.trim() === JSON.parse(readFileSync(join(copy, 'package.json'), 'utf8')).version,
    'bin: `npx provider-callbacks send voximplant --help` and `npx provider-callbacks --version` run the installed package\'s bin',
    help.code === 0 && cliVersion.code === 0 ? cliVersion.output : (help.output + cliVersion.output).replace(npmEnvNoise, ''))

  report(esmTs.code === 0, 'TypeScript .mts compiled by tsc runs: register, POST -> 200, typed handler called', esmTs.output)
  report(cjsTs.code === 0, 'TypeScript .cts compiled by tsc runs: default import and import = require register, POST -> 200', cjsTs.output)

  // Everything above ran without @opentelemetry/api (an optional peer) installed; docs/telemetry.md's
  // example needs it and an SDK.
  const otel = await run(npm[0], [...npm.slice(1), 'install', ...OTEL_PACKAGES, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], consumer)
  report(otel.code === 0, `then npm install ${OTEL_PACKAGES.join(' ')} (for docs/telemetry.md's example; every check above ran without @opentelemetry/api)`,
    otel.code === 0 ? undefined : otel.output.replace(npmEnvNoise, ''))
  if (otel.code !== 0) return

  // Every code block of README.md and of the pages (docs/*.md, bench/README.md, CONTRIBUTING.md), compiled (strict, nodenext) against the installed package and run.
  await checkReadme({ consumerDir: consumer, report })
}

try {
  await main()
} catch (error) {
  report(false, 'check-package crashed', error.stack)
} finally {
  if (process.env.KEEP_PACKAGE_CHECK_DIRS === undefined) {
    for (const dir of temps) rmSync(dir, { recursive: true, force: true })
  } else {
    console.log(`kept ${temps.join(', ')}`)
  }
}

const seconds = ((Date.now() - started) / 1000).toFixed(1)
if (failed.length > 0) {
  console.log(`check-package: ${failed.length} check(s) failed in ${seconds}s`)
  process.exitCode = 1
} else {
  console.log(`check-package: all checks passed in ${seconds}s`)
}
