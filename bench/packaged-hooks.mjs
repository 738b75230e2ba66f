// The resolve hook of packaged.mjs: <root>/lib/<path>.ts -> <root>/dist/esm/<path>.js.
const lib = new URL('../lib/', import.meta.url).href
const dist = new URL('../dist/esm/', import.meta.url).href

export async function resolve (specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context)
  if (!resolved.url.startsWith(lib)) return resolved
  return { ...resolved, url: dist + resolved.url.slice(lib.length).replace(/\.ts$/, '.js'), format: 'module' }
}
