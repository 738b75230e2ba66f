// The plugin's work by hand in Express 5: express.json(), express.urlencoded(), Express's defaults.
import express from 'express'
import { EDIS_PATH, SUCCESS, VOXIMPLANT_PATH } from '../protocol.js'
import { listen, serve } from './harness.js'
import { FAILURE, receiveEdis, receiveVoximplant } from './handwritten.js'

const app = express()
app.post(VOXIMPLANT_PATH, express.json({ limit: '1mb' }), (request, response) => {
  const status = receiveVoximplant(request.body)
  response.status(status).json(status === 200 ? SUCCESS : FAILURE)
})
app.post(EDIS_PATH, express.urlencoded({ extended: false }), (request, response) => {
  const status = receiveEdis(request.body)
  response.status(status).json(status === 200 ? SUCCESS : FAILURE)
})
serve(await listen(app))
