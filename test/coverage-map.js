// Coverage is measured on lib/ only: the demo, scripts and tests are not the product.
import { readdirSync } from 'node:fs'

const libFiles = readdirSync('lib', { recursive: true })
  .filter(file => String(file).endsWith('.ts'))
  .map(file => `lib/${file}`)

export default () => libFiles
