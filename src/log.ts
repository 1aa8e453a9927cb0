import { debuglog } from 'node:util'

/**
 * One switch for every log line: NODE_DEBUG=natmapper. Each line says which exchange with the
 * router it belongs to, so a user can paste it into a bug report.
 */
export type Logger = (message: string, ...args: unknown[]) => void

const base = debuglog('natmapper')

export function createLogger (scope: string): Logger {
  return (message, ...args) => { base(`${scope}: ${message}`, ...args) }
}

export const silentLogger: Logger = () => {}
