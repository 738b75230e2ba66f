import neostandard from 'neostandard'

// The core (what receives, verifies and delivers an event) knows nothing of the optional parts:
// they plug in through interfaces the core owns (Handlers, ObserveDelivery, onHandlerError) or the
// inbox owns (InboxHooks). Only the composition roots (lib/index.ts, lib/create-inbox-worker.ts)
// and the plugin's options name them.
const CORE = [
  'lib/events.ts', 'lib/event-types.ts', 'lib/delivery', 'lib/idempotency', 'lib/edis', 'lib/voximplant', 'lib/replies.ts', 'lib/errors.ts',
  'lib/handler-context.ts', 'lib/checks.ts', 'lib/maybe-promise.ts', 'lib/loggable-error.ts', 'lib/validation.ts',
  'lib/coerce.ts', 'lib/source.ts', 'lib/method-not-allowed.ts'
]
const OPTIONAL = ['lib/inbox', 'lib/telemetry.ts', 'lib/provision', 'lib/cli', 'lib/testing.ts']

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**'] }),
  {
    files: ['lib/**/*.ts'],
    rules: {
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', {
        zones: [
          ...CORE.map(target => ({ target, from: OPTIONAL, message: 'the core imports nothing from the optional parts: give it an interface of its own (see eslint.config.mjs)' })),
          // The inbox is optional too: telemetry reaches it through InboxHooks only.
          { target: 'lib/inbox', from: 'lib/telemetry.ts', message: 'the inbox knows telemetry through InboxHooks only' }
        ]
      }]
    }
  }
]
