// The layout's import rules (`npm run lint`) catch what they are there for: a circle, found by
// scripts/check-imports.mjs, and an import from the core into an optional part, by eslint's zones.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'
import t from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))

type Graph = Map<string, string[]>
const { sourceFiles, importGraph, circles, describeCircle } = await import('../scripts/check-imports.mjs' as string) as {
  sourceFiles: (dir: string) => string[]
  importGraph: (paths: string[]) => Graph
  circles: (graph: Graph) => string[][]
  describeCircle: (circle: string[], from?: string) => string
}

t.test('lib/ has no import circle', async t => {
  const paths = sourceFiles(join(root, 'lib'))
  t.ok(paths.includes(join(root, 'lib/events.ts')), 'lib/ and its folders are read')
  const graph = importGraph(paths)
  t.ok(graph.get(join(root, 'lib/delivery/outcome.ts'))?.includes(join(root, 'lib/event-types.ts')), 'a type-only import is an edge')
  t.same(circles(graph).map(circle => describeCircle(circle)), [])
})

t.test('two files importing each other, type-only, are a circle, named by its files', async t => {
  const dir = t.testdir({
    'a.ts': "import type { B } from './b.js'\nexport interface A { b: B }\n",
    'b.ts': "import type { A } from './a.js'\nexport interface B { a?: A }\n",
    // Imports the circle without being part of it.
    'c.ts': "import type { A } from './a.js'\nimport { readFileSync } from 'node:fs'\nexport const c = (a: A) => [a, readFileSync]\n"
  })
  const found = circles(importGraph(sourceFiles(dir)))
  t.same(found.map(circle => [...circle].sort()), [[join(dir, 'a.ts'), join(dir, 'b.ts')]])
  t.match(describeCircle(found[0]!, dir), /^import circle: (a\.ts -> b\.ts -> a\.ts|b\.ts -> a\.ts -> b\.ts)$/)
})

t.test('eslint refuses an import of telemetry.ts from the core (lib/events.ts)', async t => {
  const eslint = new ESLint({ cwd: root })
  const code = "import { loadTelemetry } from './telemetry.js'\n\nexport const load = loadTelemetry\n"
  const [result] = await eslint.lintText(code, { filePath: 'lib/events.ts' })
  const refused = result!.messages.filter(message => message.ruleId === 'import-x/no-restricted-paths')
  t.equal(refused.length, 1, JSON.stringify(result!.messages))
  t.match(refused[0], { severity: 2, line: 1, message: /the core imports nothing from the optional parts/ })
  const [allowed] = await eslint.lintText(code, { filePath: 'lib/index.ts' })
  t.same(allowed!.messages.filter(message => message.ruleId === 'import-x/no-restricted-paths'), [], 'the composition root may')
})
