// What the rest of the machine took while a window was measured: the CPU time every process spent
// (Linux's /proc/stat, steal included: a hypervisor's other guests), less the server's and the
// runner's own. A server that shares its core with another process is measured slower in ways that
// differ between servers (a batch of 1 moved the plugin's ratio to bare Fastify from about 1 to
// 0.60-0.80), so the guard judges only windows in which the rest of the machine was quiet.
import { readFileSync } from 'node:fs'

/** CPU time, in µs, all CPUs spent on anything but idling and waiting for I/O; undefined off Linux. */
function machineBusyMicros (): number | undefined {
  let stat: string
  try {
    stat = readFileSync('/proc/stat', 'utf8')
  } catch {
    return undefined
  }
  // cpu user nice system idle iowait irq softirq steal guest guest_nice, in USER_HZ (100 per s on Linux)
  const fields = /^cpu +(.*)$/m.exec(stat)?.[1]?.trim().split(/ +/).map(Number)
  if (fields === undefined || fields.length < 8) return undefined
  const [user, nice, system, , , irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number]
  return (user + nice + system + irq + softirq + steal) * 10_000
}

/** Starts counting; the function it gives answers with the rest of the machine's CPU, in % of a core, since. */
export function othersLoad (): (serverMicros: number) => number | undefined {
  const busy = machineBusyMicros()
  const own = process.cpuUsage()
  const started = process.hrtime.bigint()
  return serverMicros => {
    const now = machineBusyMicros()
    if (busy === undefined || now === undefined) return undefined
    const { user, system } = process.cpuUsage(own)
    const elapsedMicros = Number(process.hrtime.bigint() - started) / 1000
    return Math.max(0, now - busy - user - system - serverMicros) / elapsedMicros * 100
  }
}
