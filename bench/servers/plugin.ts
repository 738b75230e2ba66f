// The plugin with its default idempotency: the in-memory store.
import { servePlugin } from './plugin-app.js'

await servePlugin()
