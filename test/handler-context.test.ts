import t from 'tap'
import { ClaimLostError, ClosingError } from '../lib/errors.js'
import { DeliveryContext } from '../lib/handler-context.js'

// A handler may read its signal at any time: before the run is given up, or only after.
t.test('the signal tells a handler its run was given up, whenever it first looks', async t => {
  const early = new DeliveryContext()
  const signal = early.signal
  t.equal(signal.aborted, false)
  early.abort(new ClaimLostError())
  t.equal(signal.aborted, true)
  t.match(signal.reason, { code: 'FST_PROVIDER_CALLBACKS_CLAIM_LOST' })
  t.equal(early.signal, signal, 'one signal per run')

  const late = new DeliveryContext()
  late.abort(new ClosingError())
  late.abort(new ClaimLostError())
  t.equal(late.signal.aborted, true, 'made after the abort, already aborted')
  t.match(late.signal.reason, { code: 'FST_PROVIDER_CALLBACKS_CLOSING' }, 'the first reason stands')
})
