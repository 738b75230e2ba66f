// `provider-callbacks send edis|voximplant`: a URL gets the callbacks a provider sends, encoded and
// signed as the provider does, to try a receiving route end to end, over the wire.
import { UsageError, print, type Command } from './common.js'
import { sendEdis } from './send-edis.js'
import { sendVoximplant } from './send-voximplant.js'

export const send: Command = {
  help: `  send edis         an EDIS Global traffic-threshold callback (form POST, or GET)
  send voximplant   Voximplant account callbacks, signed, in JSON batches`,
  async run ([provider, ...rest], io, usage) {
    if (provider === '--help' || provider === '-h') return print(usage, io)
    if (provider === 'edis') return await sendEdis(rest, io)
    if (provider === 'voximplant') return await sendVoximplant(rest, io)
    throw new UsageError(provider === undefined ? 'send what? send edis or send voximplant' : `unknown provider '${provider}': edis or voximplant`, usage)
  }
}
