// The resolve hook of packaged.mjs: <root>/lib/<path>.ts -> <root>/dist/esm/<path>.js, or, for the
// check's plugin-baseline server (`--baseline DIR`), DIR/dist/esm/<path>.js: another commit's build.
import { pathToFileURL } from 'node:url'

const lib = new URL('../lib/', import.meta.url).href
const baseline = process.env.BENCH_BASELINE_ROOT
const dist = baseline === undefined ? new URL('../dist/esm/', import.meta.url).href : pathToFileURL(`${baseline}/dist/esm/`).href

export async function resolve (specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context)
  if (!resolved.url.startsWith(lib)) return resolved
  return { ...resolved, url: dist + resolved.url.slice(lib.length).replace(/\.ts$/, '.js'), format: 'module' }
}
