// The plugin with `idempotency: false`: handlers run on every delivery, nothing is remembered.
import { servePlugin } from './plugin-app.js'

await servePlugin(false)
