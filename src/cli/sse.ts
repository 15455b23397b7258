// Server-Sent Events as the agent's watch (GET /v1/watch/<prefix>) sends them:
// `id:`, `event:` and one `data:` line per event, a blank line after each.

export interface SseEvent {
  id?: string
  event: string
  data: string
}

/** Parses complete events out of `text`; returns them and the unparsed rest (pure). */
export function parseSse(text: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = []
  const blocks = text.split('\n\n')
  const rest = blocks.pop() ?? ''
  for (const block of blocks) {
    const e: SseEvent = { event: 'message', data: '' }
    let fields = 0
    for (const line of block.split('\n')) {
      // comments (": ping") and `retry:` carry no event
      const m = /^([^:]+): ?(.*)$/.exec(line)
      if (!m) continue
      if (m[1] === 'id') e.id = m[2]
      else if (m[1] === 'event') e.event = m[2] as string
      else if (m[1] === 'data') e.data = e.data ? `${e.data}\n${m[2]}` : (m[2] as string)
      else continue
      fields++
    }
    if (fields > 0) events.push(e)
  }
  return { events, rest }
}
