// The provisioning clients' types: what set/show resolve to, and what they refuse to compile.
import {
  edisHooks, ProvisionError, voximplantWebhook,
  type EdisHook, type EdisHooks, type EdisHookSettings, type VoximplantKeyFile, type VoximplantWebhook, type VoximplantWebhookState
} from '../../lib/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T extends true> (_check?: T): void {}

const edis: EdisHooks = edisHooks({ email: 'e', password: 'p', sessionUrl: 'http://127.0.0.1:1', apiUrl: host => `http://${host}`, timeout: 1000, fetch })
expectType<Equal<Awaited<ReturnType<EdisHooks['set']>>, EdisHook>>()
expectType<Equal<EdisHook, { kvm: string, hookId: number }>>()
expectType<Equal<Awaited<ReturnType<EdisHooks['demo']>>, { kvm: string, hookId: number | undefined }>>()
expectType<Equal<Awaited<ReturnType<EdisHooks['kvms']>>, string[]>>()
const settings: EdisHookSettings = { kvm: 'kvm_1_2', url: 'https://x/cb', trigger: 80, method: 'get', credentials: { username: 'u', password: 'p' } }
await edis.set(settings)
await edis.remove({ kvm: 'kvm_1_2', hookId: 3 })
// @ts-expect-error a hook id is an integer here (a string only on EDIS's wire)
await edis.remove({ kvm: 'kvm_1_2', hookId: '3' })
// @ts-expect-error the trigger is a percentage; the demo has its own call
await edis.set({ ...settings, trigger: 'demo' })
// @ts-expect-error EDIS calls with post or get only
await edis.set({ ...settings, method: 'put' })
// @ts-expect-error the password is required
edisHooks({ email: 'e' })

const key: VoximplantKeyFile = { account_id: 1, key_id: 'k', private_key: '-----BEGIN PRIVATE KEY-----' }
const webhook: VoximplantWebhook = voximplantWebhook({ credentials: key, apiUrl: 'https://api.voximplant.com' })
voximplantWebhook({ credentials: '/path/to/key.json' })
expectType<Equal<Awaited<ReturnType<VoximplantWebhook['show']>>, VoximplantWebhookState>>()
expectType<Equal<VoximplantWebhookState, { accountId: number, callbackUrl: string | undefined, saltSet: boolean }>>()
expectType<Equal<Awaited<ReturnType<VoximplantWebhook['set']>>, { salt: string | undefined }>>()
await webhook.set({ url: 'https://x/cb' })
await webhook.set({ url: 'https://x/cb', salt: false })
// @ts-expect-error salt: a string, false to keep it, or left out for a new one
await webhook.set({ url: 'https://x/cb', salt: true })
// @ts-expect-error the key file needs its key_id
voximplantWebhook({ credentials: { account_id: 1, private_key: 'k' } })

const error: Error = new ProvisionError('m', 'EDIS AUTH', 500)
if (error instanceof ProvisionError) {
  expectType<Equal<typeof error.call, string>>()
  expectType<Equal<typeof error.status, number | undefined>>()
}
