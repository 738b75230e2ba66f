// Fails when lib/ has an import circle, type-only imports included: a file's imports must form a
// tree, so that each concern can be read, and changed, from its imports down. (eslint's
// import-x/no-cycle does not resolve lib/'s `./x.js` specifiers to their .ts files, so finds none.)
// `node scripts/check-imports.mjs` prints the circles it finds and exits 1 on any. Its parts are
// exported for test/check-imports.test.ts, which runs them on a folder of its own too.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const lib = join(root, 'lib')

/** The .ts files under a folder (declaration files aside), by their full paths. */
export function sourceFiles (dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

/** Each file's relative imports among `paths` (static, dynamic, `import type`, `export … from`), as files. */
export function importGraph (paths) {
  const graph = new Map()
  for (const path of paths) {
    const { importedFiles } = ts.preProcessFile(readFileSync(path, 'utf8'), true, true)
    graph.set(path, importedFiles.map(({ fileName }) => fileName).filter(name => name.startsWith('.'))
      .map(name => resolve(dirname(path), name.replace(/\.js$/, '.ts'))).filter(target => graph.has(target) || paths.includes(target)))
  }
  return graph
}

/** The circles of a graph, each once, as lists of its files. */
export function circles (graph) {
  const found = new Map()
  const state = new Map()
  const stack = []
  const visit = node => {
    state.set(node, 'open')
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') {
        const circle = stack.slice(stack.indexOf(next))
        found.set([...circle].sort().join(' '), circle)
      } else if (!state.has(next)) {
        visit(next)
      }
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of graph.keys()) if (!state.has(node)) visit(node)
  return [...found.values()]
}

/** How the command names a circle: `import circle: lib/a.ts -> lib/b.ts -> lib/a.ts`, its paths relative to `from`. */
export function describeCircle (circle, from = root) {
  return `import circle: ${[...circle, circle[0]].map(path => relative(from, path)).join(' -> ')}`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const paths = sourceFiles(lib)
  const found = circles(importGraph(paths))
  for (const circle of found) console.error(describeCircle(circle))
  if (found.length > 0) process.exit(1)
  console.log(`check-imports: ${paths.length} files of lib/, no import circle`)
}
