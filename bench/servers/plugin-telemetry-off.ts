// The plugin with `telemetry: false`: @opentelemetry/api is not loaded, nothing is wrapped.
import { servePlugin } from './plugin-app.js'

await servePlugin(undefined, undefined, { telemetry: false })
