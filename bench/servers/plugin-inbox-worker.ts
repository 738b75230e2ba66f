// plugin-inbox with its worker in the same process (concurrency 16) and a handler of 50 ms: the
// provider's answer beside handlers the synchronous path would make it wait for.
process.env.BENCH_WORKER ??= '16'
process.env.BENCH_HANDLER_MS ??= '50'
await import('./plugin-inbox.js')
