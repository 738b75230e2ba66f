// The report: medians per server and scenario, the plugin's ratios, a markdown table of each, and
// the ratios as a small SVG bar chart (hand-rolled, no dependency).
import { cpus, release, type as osType } from 'node:os'

/** One measured window of one server under one scenario. */
export interface Sample {
  server: string
  scenario: string
  round: number
  reqPerSec: number
  itemsPerSec: number
  p99Ms: number
  cpuMicrosPerItem: number
  /** The server's CPU time over the window's wall time: 100 is one core busy throughout. */
  cpuPercent: number
  /** The rest of the machine's CPU time over the window (every process but the server and the runner), in % of a core; undefined off Linux. */
  othersPercent?: number | undefined
  /** Hashes the load generator computed during the window (its pool was dry): 0 normally. */
  onTheSpot: number
}

export interface Summary {
  server: string
  scenario: string
  rounds: number
  reqPerSec: number
  /** (max - min) / median of req/s over the rounds. */
  reqPerSecSpread: number
  itemsPerSec: number
  p99Ms: number
  cpuMicrosPerItem: number
  cpuPercent: number
  onTheSpot: number
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Medians over the rounds, in the order the servers and scenarios are given. */
export function summarise (samples: Sample[], servers: string[], scenarios: string[]): Summary[] {
  const summaries: Summary[] = []
  for (const scenario of scenarios) {
    for (const server of servers) {
      const runs = samples.filter(s => s.server === server && s.scenario === scenario)
      if (runs.length === 0) continue
      const of = (key: keyof Sample): number[] => runs.map(run => run[key] as number)
      const reqPerSec = median(of('reqPerSec'))
      summaries.push({
        server,
        scenario,
        rounds: runs.length,
        reqPerSec,
        reqPerSecSpread: (Math.max(...of('reqPerSec')) - Math.min(...of('reqPerSec'))) / reqPerSec,
        itemsPerSec: median(of('itemsPerSec')),
        p99Ms: median(of('p99Ms')),
        cpuMicrosPerItem: median(of('cpuMicrosPerItem')),
        cpuPercent: median(of('cpuPercent')),
        onTheSpot: of('onTheSpot').reduce((a, b) => a + b, 0)
      })
    }
  }
  return summaries
}

export interface Ratios {
  scenario: string
  /** plugin / other, for each of fastify-bare and express: req/s, then CPU µs per item. */
  reqPerSec: { bare?: number | undefined, express?: number | undefined }
  cpuPerItem: { bare?: number | undefined, express?: number | undefined }
  /** plugin-no-idempotency / fastify-bare: the plugin's own work, without remembering events. */
  withoutIdempotency: { reqPerSec?: number | undefined, cpuPerItem?: number | undefined }
}

export function ratios (summaries: Summary[], scenarios: string[]): Ratios[] {
  const find = (server: string, scenario: string): Summary | undefined => summaries.find(s => s.server === server && s.scenario === scenario)
  const out: Ratios[] = []
  for (const scenario of scenarios) {
    const plugin = find('plugin', scenario)
    if (plugin === undefined) continue
    const bare = find('fastify-bare', scenario)
    const express = find('express', scenario)
    if (bare === undefined && express === undefined) continue
    const bareWork = find('plugin-no-idempotency', scenario)
    out.push({
      scenario,
      reqPerSec: { bare: bare && plugin.reqPerSec / bare.reqPerSec, express: express && plugin.reqPerSec / express.reqPerSec },
      cpuPerItem: { bare: bare && plugin.cpuMicrosPerItem / bare.cpuMicrosPerItem, express: express && plugin.cpuMicrosPerItem / express.cpuMicrosPerItem },
      withoutIdempotency: {
        reqPerSec: bare && bareWork && bareWork.reqPerSec / bare.reqPerSec,
        cpuPerItem: bare && bareWork && bareWork.cpuMicrosPerItem / bare.cpuMicrosPerItem
      }
    })
  }
  return out
}

/** A number for a table: no more digits than it is worth. */
export function fmt (value: number | undefined, digits?: number): string {
  if (value === undefined || !Number.isFinite(value)) return '–'
  if (digits !== undefined) return value.toFixed(digits)
  if (Math.abs(value) >= 100) return Math.round(value).toString()
  if (Math.abs(value) >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

/** Latency in ms: autocannon's percentiles are whole milliseconds, a median of two may not be. */
export function ms (value: number): string {
  return fmt(value, Number.isInteger(value) ? 0 : 1)
}

export function markdownTable (header: string[], rows: string[][], numericFrom = 1): string {
  const align = header.map((_, i) => i >= numericFrom ? '---:' : '---')
  return [header, align, ...rows].map(cells => `| ${cells.join(' | ')} |`).join('\n')
}

export function resultsTable (summaries: Summary[]): string {
  return markdownTable(
    ['scenario', 'server', 'req/s', 'items/s', 'p99 ms', 'CPU µs/item', 'server CPU %', 'req/s spread'],
    summaries.map(s => [
      s.scenario, s.server, fmt(s.reqPerSec, 0), fmt(s.itemsPerSec, 0), ms(s.p99Ms), fmt(s.cpuMicrosPerItem), fmt(s.cpuPercent, 0),
      `${fmt(s.reqPerSecSpread * 100, 0)}%`
    ]),
    2
  )
}

export function ratiosTable (all: Ratios[]): string {
  return markdownTable(
    ['scenario', 'req/s plugin/fastify-bare', 'req/s plugin/express', 'CPU per item plugin/fastify-bare', 'CPU per item plugin/express',
      'req/s plugin-no-idempotency/fastify-bare', 'CPU per item plugin-no-idempotency/fastify-bare'],
    all.map(r => [r.scenario, fmt(r.reqPerSec.bare), fmt(r.reqPerSec.express), fmt(r.cpuPerItem.bare), fmt(r.cpuPerItem.express),
      fmt(r.withoutIdempotency.reqPerSec), fmt(r.withoutIdempotency.cpuPerItem)])
  )
}

export function machine (): string {
  const list = cpus()
  return [
    `- OS: ${osType()} ${release()}`,
    `- CPUs: ${list.length} x ${list[0]?.model.trim() ?? 'unknown'}`,
    `- Node.js: ${process.version}`,
    `- date: ${new Date().toISOString()}`
  ].join('\n')
}

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/**
 * Bars of the plugin's req/s over fastify-bare's and over Express's, per scenario, with a dashed
 * line at the target (0.9).
 */
export function ratiosSvg (all: Ratios[], target = 0.9): string {
  const width = 640
  const height = 360
  const left = 56
  const right = 16
  const top = 48
  const bottom = 56
  const plotWidth = width - left - right
  const plotHeight = height - top - bottom
  const values = all.flatMap(r => [r.reqPerSec.bare, r.reqPerSec.express]).filter((v): v is number => v !== undefined)
  const yMax = Math.max(1.2, Math.ceil(Math.max(...values, 0) * 1.15 * 5) / 5)
  const y = (value: number): number => top + plotHeight * (1 - value / yMax)
  const series = [
    { key: 'bare' as const, label: 'plugin / fastify-bare', color: '#3b6fb6' },
    { key: 'express' as const, label: 'plugin / express', color: '#e08a2c' }
  ]
  const group = plotWidth / Math.max(all.length, 1)
  const bar = Math.min(48, group / 3)
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">Plugin throughput relative to hand-written servers (req/s ratio, median)</text>`
  ]
  const step = yMax <= 1.6 ? 0.2 : yMax <= 3 ? 0.5 : 1
  for (let tick = 0; tick <= yMax + 1e-9; tick += step) {
    const ty = y(tick).toFixed(1)
    out.push(`<line x1="${left}" y1="${ty}" x2="${width - right}" y2="${ty}" stroke="#e4e4e4"/>`)
    out.push(`<text x="${left - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle">${tick.toFixed(1)}</text>`)
  }
  all.forEach((ratio, i) => {
    const center = left + group * (i + 0.5)
    series.forEach((s, j) => {
      const value = ratio.reqPerSec[s.key]
      if (value === undefined) return
      const x = center + (j - 1) * bar + (j === 0 ? -2 : 2)
      out.push(`<rect x="${x.toFixed(1)}" y="${y(value).toFixed(1)}" width="${bar.toFixed(1)}" height="${(y(0) - y(value)).toFixed(1)}" fill="${s.color}"/>`)
      out.push(`<text x="${(x + bar / 2).toFixed(1)}" y="${(y(value) - 4).toFixed(1)}" text-anchor="middle">${value.toFixed(2)}</text>`)
    })
    out.push(`<text x="${center.toFixed(1)}" y="${height - bottom + 18}" text-anchor="middle">${escape(ratio.scenario)}</text>`)
  })
  out.push(`<line x1="${left}" y1="${y(0)}" x2="${width - right}" y2="${y(0)}" stroke="#333"/>`)
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${y(0)}" stroke="#333"/>`)
  const ty = y(target).toFixed(1)
  out.push(`<line x1="${left}" y1="${ty}" x2="${width - right}" y2="${ty}" stroke="#c62828" stroke-width="2" stroke-dasharray="6 4"/>`)
  out.push(`<text x="${width - right - 4}" y="${(y(target) - 6).toFixed(1)}" text-anchor="end" fill="#c62828">target ${target}</text>`)
  series.forEach((s, j) => {
    const lx = left + j * 190
    out.push(`<rect x="${lx}" y="${height - 22}" width="12" height="12" fill="${s.color}"/>`)
    out.push(`<text x="${lx + 18}" y="${height - 12}">${escape(s.label)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}
