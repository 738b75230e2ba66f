// Loaded into every bench server after tsx: the plugin's own modules (lib/*.ts) are taken from
// dist/esm, tsc's build, the code users install. Under tsx they would be esbuild's output with
// keepNames, which wraps every function made at run time in a call that names it: a cost per
// closure (about 2.6 µs per 10-item Voximplant batch on this machine) that no user pays.
import { register } from 'node:module'

register(new URL('./packaged-hooks.mjs', import.meta.url))
