// The plugin as another commit built it (`npm run bench -- --check --baseline DIR`, DIR/dist/esm
// through bench/packaged.mjs), with its default idempotency: the before of a before/after.
import { servePlugin } from './plugin-app.js'

await servePlugin()
