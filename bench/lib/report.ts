/**
 * One section per benchmark of issue 7: a table, the goal it is judged against, the verdicts,
 * and notes on method. Rendered as Markdown, which reads well on a terminal too.
 */

export interface Section {
  id: number
  title: string
  /** The goal, quoted. */
  goal: string
  /** How it was measured, in one or two sentences. */
  method: string
  columns: string[]
  rows: string[][]
  /** "met" / "missed" lines, each with the numbers it rests on. */
  verdicts: string[]
  notes: string[]
}

export function renderTable (columns: string[], rows: string[][]): string {
  const escape = (cell: string): string => cell.replace(/\|/g, '\\|').replace(/\n/g, ' ')
  const lines = [
    `| ${columns.map(escape).join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${columns.map((_c, i) => escape(row[i] ?? '')).join(' | ')} |`)
  ]
  return lines.join('\n')
}

export function renderSection (section: Section): string {
  const parts = [
    `## ${section.id}. ${section.title}`,
    '',
    `Goal: ${section.goal}`,
    '',
    `Method: ${section.method}`,
    '',
    renderTable(section.columns, section.rows)
  ]
  if (section.verdicts.length > 0) parts.push('', ...section.verdicts.map((v) => `- ${v}`))
  if (section.notes.length > 0) parts.push('', ...section.notes.map((n) => `- ${n}`))
  return parts.join('\n')
}

/** A verdict line: `**met**: ...` or `**missed**: ...`. */
export function verdict (met: boolean | undefined, text: string): string {
  const word = met === undefined ? '**not judged**' : met ? '**met**' : '**missed**'
  return `${word}: ${text}`
}
