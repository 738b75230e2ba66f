// npm run bench -- --check: the regression guard. The plugin, fastify-bare and Express, interleaved
// over rounds (a fresh process each per round), on the Voximplant scenarios. Capacity is items per
// second of the server's own CPU (1 / CPU per item): unlike req/s it does not move with how much
// CPU the load generator, on the same machine, leaves the server. Each round gives a ratio of the
// plugin's capacity to each hand-written server's, measured minutes apart at most; the check takes
// the median over the rounds, so that one round disturbed by the machine moves nothing, and fails
// when one falls below its floor.
import { fmt, markdownTable, median, type Sample } from './report.js'

export const CHECK_SERVERS = ['plugin', 'fastify-bare', 'express']
export const CHECK_SCENARIOS = ['vox-1', 'vox-10', 'vox-100']
/**
 * Below these, a median capacity ratio fails the check. The targets are 0.9 and 1; on the 2-core CI
 * machine one round's ratio against bare Fastify moves from 0.74 to 1.13 for code whose median is
 * about 0.87, so 0.75 is what the median clears when nothing changed, and what the regression this
 * guard was made for (0.46 to 0.63) does not.
 */
export const FLOORS = { 'fastify-bare': 0.75, express: 0.9 } as const

export interface CheckRow {
  scenario: string
  against: keyof typeof FLOORS
  /** The plugin's capacity over the other server's, round by round. */
  perRound: number[]
  median: number
  floor: number
  passed: boolean
}

/** The capacity ratios of the plugin against each hand-written server, per scenario. */
export function capacityRatios (samples: Sample[], scenarios: string[]): CheckRow[] {
  const rows: CheckRow[] = []
  for (const scenario of scenarios) {
    for (const against of Object.keys(FLOORS) as Array<keyof typeof FLOORS>) {
      const perRound: number[] = []
      for (const plugin of samples.filter(s => s.server === 'plugin' && s.scenario === scenario)) {
        const other = samples.find(s => s.server === against && s.scenario === scenario && s.round === plugin.round)
        if (other !== undefined) perRound.push(other.cpuMicrosPerItem / plugin.cpuMicrosPerItem)
      }
      if (perRound.length === 0) continue
      const middle = median(perRound)
      rows.push({ scenario, against, perRound, median: middle, floor: FLOORS[against], passed: middle >= FLOORS[against] })
    }
  }
  return rows
}

export function checkTable (rows: CheckRow[]): string {
  return markdownTable(
    ['scenario', 'plugin capacity over', 'median', 'floor', 'rounds', 'spread', ''],
    rows.map(r => [r.scenario, r.against, fmt(r.median), fmt(r.floor), r.perRound.map(v => fmt(v)).join(' '),
      fmt(Math.max(...r.perRound) - Math.min(...r.perRound)), r.passed ? 'ok' : 'BELOW THE FLOOR'])
  )
}
