// CI's combinations of Node and dependency versions, run one after another: a failing one is
// reported and the rest still run; the exit code is 1 if any failed. Prints each one's time.
//
// - main: this machine's `node` and the lockfile, `npm ci` + `npm test`: exactly what README's
//   `npm test` runs on a fresh machine, so a green CI means a green `npm test` for a developer;
//   then `npm run bench -- --check`, the performance guard.
// - Node 24 (the newest LTS line): the package check, whose consumer installs the newest
//   `fastify@5` beside the packed tarball and runs the examples of README and docs/.
// - Node 22 with the peer Fastify and every dependency at the floor of its range: the bottom of
//   what package.json promises, on the oldest supported line.
// - Node 24 with everything at the newest its range allows (no lockfile): what `npm install` gives
//   a user today, and a warning that the next lockfile refresh breaks something. The inbox's chaos
//   test runs here at its long size (CHAOS=long); the other combinations run its quick one.
// Each Node line and each end of the ranges runs once, not every pairing: the unit tests take
// minutes, and the summary names the versions a failing combination ran, so a bisect can start
// there. Coverage is gated once, in `npm test`: it measures which lines of lib/ the tests reach,
// which the runtime does not change, so the other runs skip collecting it.
//
// Node binaries come from the npm registry (the node-<platform>-<arch> packages carry the official
// builds), installed under .ci/.node/<line>/: npm checks each tarball against the registry's
// sha512 integrity, and its content-addressed cache (~/.npm) is what makes the next run, or the next
// fresh clone, skip the download. The newest release of each line is taken at every run: Fastify
// supports only the newest release of a Node line, and so does this plugin.
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

const COMBINATIONS = [
  // Then the bench's regression guard (bench/check.ts, about 4 minutes): the Voximplant path's
  // capacity against bare Fastify and Express. It judges only rounds in which the rest of the
  // machine was quiet, so a busy machine makes it say NOT JUDGED rather than fail.
  { name: 'main', node: 'machine', deps: 'lockfile', steps: [['npm', 'ci', '--no-audit', '--no-fund'], ['npm', 'test'], ['npm', 'run', 'bench', '--', '--check']] },
  { name: 'node24-package', node: '24', deps: 'lockfile', steps: [['npm', 'run', 'test:package']] },
  { name: 'node22-floors', node: '22', deps: 'floors', steps: [['npm', 'run', 'test:unit', '--', '--disable-coverage']] },
  // The inbox's chaos test at its long size (3000 events) here only: a few minutes more, once.
  { name: 'node24-newest', node: '24', deps: 'newest', env: { CHAOS: 'long' }, steps: [['npm', 'run', 'test:unit', '--', '--disable-coverage']] }
]

const temps = []
const results = []

function log (line) {
  console.log(`ci: ${line}`)
}

/** Runs a command with inherited output; resolves with its exit code (1 if it could not start). */
function run (args, cwd, env) {
  return new Promise(resolve => {
    const child = spawn(args[0], args.slice(1), { cwd, env, stdio: 'inherit' })
    child.on('error', error => { console.error(error.message); resolve(1) })
    child.on('close', code => resolve(code ?? 1))
  })
}

/** Runs a command and resolves with its stdout; rejects with its output if it fails. */
function capture (args, cwd, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(args[0], args.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', chunk => { out += chunk })
    child.stderr.on('data', chunk => { err += chunk })
    child.on('error', reject)
    child.on('close', code => code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')} exited ${code}\n${out}${err}`)))
  })
}

function duration (ms) {
  const s = Math.round(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

/** The newest release of Node `line`, installed from the npm registry; its bin directory and version. */
async function nodeLine (line) {
  const pkg = `node-${process.platform}-${process.arch}`
  if (!['linux', 'darwin'].includes(process.platform)) throw new Error(`no ${pkg} binary layout known for ${process.platform}`)
  const prefix = join(root, '.ci', '.node', line)
  mkdirSync(prefix, { recursive: true })
  await capture(['npm', 'install', '--prefix', prefix, `${pkg}@${line}`, '--no-audit', '--no-fund', '--loglevel=error'], root, process.env)
  const bin = join(prefix, 'node_modules', pkg, 'bin')
  const installed = JSON.parse(readFileSync(join(prefix, 'node_modules', pkg, 'package.json'), 'utf8')).version
  const lock = JSON.parse(readFileSync(join(prefix, 'package-lock.json'), 'utf8'))
  const integrity = lock.packages[`node_modules/${pkg}`].integrity
  const version = (await capture([join(bin, 'node'), '--version'], root, process.env)).trim()
  if (version !== `v${installed}`) throw new Error(`${pkg}@${installed} runs as ${version}`)
  return { bin, version, from: `${pkg}@${installed}, ${integrity.slice(0, 22)}…` }
}

/**
 * The repository's files in a folder of their own, as `git add -A` would commit them (a clean
 * checkout's are HEAD's), without node_modules: the dependencies other than the lockfile's are
 * installed there, leaving this checkout's alone.
 */
async function copyOfTree (name) {
  const dir = mkdtempSync(join(tmpdir(), `fastify-provider-callbacks-ci-${name}-`))
  temps.push(dir)
  const files = (await capture(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], root, process.env)).split('\0')
  for (const file of files) {
    if (file !== '' && existsSync(join(root, file))) cpSync(join(root, file), join(dir, file), { recursive: false })
  }
  return dir
}

/**
 * `name@version` for each dependency and installed peer at the lowest version its range allows.
 * A peer counts when the repository installs it (as a devDependency): the tests run against it.
 */
function floors () {
  const semver = createRequire(join(root, 'package.json'))('semver')
  const ranges = { ...manifest.dependencies }
  for (const [name, range] of Object.entries(manifest.peerDependencies ?? {})) {
    if (manifest.devDependencies?.[name] !== undefined) ranges[name] = range
  }
  return Object.entries(ranges).map(([name, range]) => `${name}@${semver.minVersion(range).version}`)
}

/** The installed version of each dependency and peer, for the record of what a combination ran. */
function versions (dir) {
  const names = [...new Set([...Object.keys(manifest.peerDependencies ?? {}), ...Object.keys(manifest.dependencies ?? {})])]
  return names.map(name => {
    const file = join(dir, 'node_modules', ...name.split('/'), 'package.json')
    return `${name} ${existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).version : '(not installed)'}`
  }).join(', ')
}

async function runCombination (combination, index, count) {
  const started = Date.now()
  const header = `[${index + 1}/${count}] ${combination.name}`
  const steps = [...Object.entries(combination.env ?? {}).map(([name, value]) => `${name}=${value}`), combination.steps.map(step => step.join(' ')).join(' && ')].join(' ')
  let node = `Node ${process.version}`
  let cwd = root
  let ok = false
  try {
    const env = { ...process.env, ...combination.env }
    if (combination.node !== 'machine') {
      const line = await nodeLine(combination.node)
      env.PATH = `${line.bin}${delimiter}${env.PATH}`
      node = `Node ${line.version}`
      log(`${header}: ${node} from ${line.from}`)
    }
    if (combination.deps === 'floors') {
      cwd = await copyOfTree(combination.name)
      const specs = floors()
      log(`${header}: installing the lockfile's tree with ${specs.join(' ')}`)
      await capture(['npm', 'install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', ...specs], cwd, env)
    } else if (combination.deps === 'newest') {
      cwd = await copyOfTree(combination.name)
      rmSync(join(cwd, 'package-lock.json'))
      log(`${header}: installing every dependency at the newest its range allows (no lockfile)`)
      await capture(['npm', 'install', '--no-audit', '--no-fund', '--loglevel=error'], cwd, env)
    }
    log(`${header}: ${node}, ${combination.deps}: ${steps}`)
    ok = true
    for (const step of combination.steps) {
      const code = await run(step, cwd, env)
      if (code !== 0) {
        log(`${header}: \`${step.join(' ')}\` exited ${code}`)
        ok = false
        break
      }
    }
  } catch (error) {
    log(`${header}: could not be set up: ${error.message}`)
  }
  const time = Date.now() - started
  // After the steps: the main combination's own `npm ci` installs what it runs against.
  const ran = existsSync(join(cwd, 'node_modules')) ? versions(cwd) : 'nothing installed'
  results.push({ ok, time, what: `${combination.name}: ${node}, ${combination.deps} (${ran}): ${steps}` })
  log(`${header}: ${ok ? 'passed' : 'FAILED'} in ${duration(time)}`)
}

// `.ci/run NAME…` runs only the combinations named.
const chosen = process.argv.length > 2 ? COMBINATIONS.filter(c => process.argv.includes(c.name)) : COMBINATIONS
if (chosen.length === 0) {
  log(`no combination named ${process.argv.slice(2).join(', ')}; there are ${COMBINATIONS.map(c => c.name).join(', ')}`)
  process.exit(1)
}
const started = Date.now()
try {
  for (const [index, combination] of chosen.entries()) await runCombination(combination, index, chosen.length)
} finally {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true })
}
console.log('')
for (const result of results) log(`${result.ok ? 'ok  ' : 'FAIL'} ${duration(result.time).padStart(6)}  ${result.what}`)
const failed = results.filter(result => !result.ok).length
log(failed === 0
  ? `all ${results.length} combinations passed in ${duration(Date.now() - started)}`
  : `${failed} of ${results.length} combinations FAILED (${duration(Date.now() - started)})`)
process.exitCode = failed === 0 ? 0 : 1
