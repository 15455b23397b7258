// The cluster map: one canvas, hosts at their projected Vivaldi coordinates (model/layout.ts),
// an edge from this host to every other coloured by its RTT estimate, the node filled by state
// and ringed by zone. Canvas, not SVG: at 1,000 hosts an SVG map is ~3,000 DOM nodes that the
// browser restyles on every pan and zoom; the canvas redraws the same picture in a few ms.
// Every fact drawn here is also in the hosts table (tables.tsx) for keyboard and screen readers.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks'
import { layoutHosts, type Point } from '../model/layout.js'
import { rttColour, rttRange, STATE_COLOUR, zoneColour, zoneOf } from '../model/rtt.js'
import type { Host } from './api.js'

/** above this many hosts, names are drawn only once zoomed in (they would cover each other) */
const LABEL_ALL_BELOW = 60
const NODE_R = 7

interface View {
  scale: number
  dx: number
  dy: number
}

export interface MapProps {
  hosts: Host[]
  subnetOf: Map<string, string>
  selected: string | undefined
  onSelect: (name: string | undefined) => void
}

let firstDrawn = false

export function ClusterMap({ hosts, subnetOf, selected, onSelect }: MapProps) {
  const canvas = useRef<HTMLCanvasElement>(null)
  const [view, setView] = useState<View>({ scale: 1, dx: 0, dy: 0 })
  const [size, setSize] = useState({ w: 800, h: 560 })
  const positions = useMemo(() => layoutHosts(hosts), [hosts])
  const range = useMemo(() => rttRange(hosts.map((h) => h.rttMs)), [hosts])
  const drag = useRef<{ x: number; y: number; moved: boolean } | null>(null)

  // follow the element's size (the canvas' pixels are set from it)
  useEffect(() => {
    const el = canvas.current?.parentElement
    if (!el) return
    const ro = new ResizeObserver(() =>
      setSize({ w: el.clientWidth, h: Math.max(360, Math.round(el.clientWidth * 0.62)) }),
    )
    ro.observe(el)
    return () => ro.disconnect()
  }, [])

  const toScreen = (p: Point) => ({
    x: (p.x * size.w - size.w / 2) * view.scale + size.w / 2 + view.dx,
    y: (p.y * size.h - size.h / 2) * view.scale + size.h / 2 + view.dy,
  })

  // drawn right after each render (a layout effect runs before the browser paints): an input's
  // redraw is in the very next frame
  useLayoutEffect(() => {
    const c = canvas.current
    if (!c) return
    performance.mark('plexus-map-draw-start')
    draw(c, hosts, positions, subnetOf, selected, range, size, toScreen, view.scale)
    performance.measure('plexus-map-draw', 'plexus-map-draw-start')
    if (!firstDrawn && hosts.length > 0) {
      firstDrawn = true
      // from navigation start: loading the bundle, the first reads and this draw
      performance.measure('plexus-map-first-draw', { start: 0, end: performance.now() })
    }
  })

  const hostAt = (x: number, y: number): string | undefined => {
    let best: string | undefined
    let bestD = (NODE_R + 4) ** 2
    for (const h of hosts) {
      const p = positions.get(h.name)
      if (!p) continue
      const s = toScreen(p)
      const d = (s.x - x) ** 2 + (s.y - y) ** 2
      if (d <= bestD) {
        best = h.name
        bestD = d
      }
    }
    return best
  }

  const zoom = (factor: number, x = size.w / 2, y = size.h / 2) =>
    setView((v) => {
      const scale = Math.min(40, Math.max(0.5, v.scale * factor))
      const k = scale / v.scale
      // keep the point under the cursor where it is
      return {
        scale,
        dx: (v.dx - (x - size.w / 2)) * k + (x - size.w / 2),
        dy: (v.dy - (y - size.h / 2)) * k + (y - size.h / 2),
      }
    })

  const local = (e: MouseEvent) => {
    const r = (e.currentTarget as HTMLElement).getBoundingClientRect()
    return { x: e.clientX - r.left, y: e.clientY - r.top }
  }

  // what the labels say and where, for tests and tools (only while every name is drawn)
  const drawn =
    hosts.length < LABEL_ALL_BELOW
      ? JSON.stringify(
          hosts.flatMap((h) => {
            const p = positions.get(h.name)
            if (!p) return []
            const s = toScreen(p)
            return [
              {
                name: h.name,
                subnet: subnetOf.get(h.name) ?? 'no subnet',
                x: Math.round(s.x),
                y: Math.round(s.y),
              },
            ]
          }),
        )
      : undefined

  return (
    <canvas
      ref={canvas}
      class="map"
      data-drawn={drawn}
      width={size.w * devicePixelRatio}
      height={size.h * devicePixelRatio}
      style={{ width: `${size.w}px`, height: `${size.h}px` }}
      role="img"
      aria-label={`Cluster map of ${hosts.length} hosts. The hosts table holds the same facts.`}
      tabIndex={0}
      onWheel={(e) => {
        e.preventDefault()
        const p = local(e)
        zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2, p.x, p.y)
      }}
      onPointerDown={(e) => {
        drag.current = { ...local(e), moved: false }
      }}
      onPointerMove={(e) => {
        const d = drag.current
        if (!d) return
        const p = local(e)
        if (Math.abs(p.x - d.x) + Math.abs(p.y - d.y) < 3 && !d.moved) return
        d.moved = true
        setView((v) => ({ ...v, dx: v.dx + p.x - d.x, dy: v.dy + p.y - d.y }))
        d.x = p.x
        d.y = p.y
      }}
      onPointerUp={(e) => {
        const d = drag.current
        drag.current = null
        if (d && !d.moved) {
          const p = local(e)
          onSelect(hostAt(p.x, p.y))
        }
      }}
      onKeyDown={(e) => {
        const step = 40
        const moves: Record<string, () => void> = {
          ArrowLeft: () => setView((v) => ({ ...v, dx: v.dx + step })),
          ArrowRight: () => setView((v) => ({ ...v, dx: v.dx - step })),
          ArrowUp: () => setView((v) => ({ ...v, dy: v.dy + step })),
          ArrowDown: () => setView((v) => ({ ...v, dy: v.dy - step })),
          '+': () => zoom(1.2),
          '-': () => zoom(1 / 1.2),
          '0': () => setView({ scale: 1, dx: 0, dy: 0 }),
        }
        const move = moves[e.key]
        if (move) {
          e.preventDefault()
          move()
        }
      }}
    />
  )
}

function draw(
  c: HTMLCanvasElement,
  hosts: Host[],
  positions: Map<string, Point>,
  subnetOf: Map<string, string>,
  selected: string | undefined,
  [low, high]: [number, number],
  size: { w: number; h: number },
  toScreen: (p: Point) => Point,
  scale: number,
): void {
  const g = c.getContext('2d')
  if (!g) return
  g.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0)
  g.clearRect(0, 0, size.w, size.h)
  const self = hosts.find((h) => h.self)
  const at = new Map<string, Point>()
  for (const h of hosts) {
    const p = positions.get(h.name)
    if (p) at.set(h.name, toScreen(p))
  }
  // edges: this host to each other host, by RTT (one colour bucket per stroke keeps it to a few paths)
  const origin = self ? at.get(self.name) : undefined
  if (origin) {
    const buckets = new Map<string, Point[]>()
    for (const h of hosts) {
      const p = at.get(h.name)
      if (!p || h.self) continue
      const colour = rttColour(h.rttMs === null ? null : Math.round(h.rttMs * 10) / 10, low, high)
      const list = buckets.get(colour)
      if (list) list.push(p)
      else buckets.set(colour, [p])
    }
    g.lineWidth = hosts.length > 200 ? 0.5 : 1.5
    for (const [colour, points] of buckets) {
      g.strokeStyle = colour
      g.beginPath()
      for (const p of points) {
        g.moveTo(origin.x, origin.y)
        g.lineTo(p.x, p.y)
      }
      g.stroke()
    }
  }
  const labels = hosts.length < LABEL_ALL_BELOW || scale >= 4
  g.font = '12px system-ui, sans-serif'
  g.textBaseline = 'top'
  for (const h of hosts) {
    const p = at.get(h.name)
    if (!p || p.x < -20 || p.y < -20 || p.x > size.w + 20 || p.y > size.h + 20) continue
    g.beginPath()
    g.arc(p.x, p.y, NODE_R, 0, 2 * Math.PI)
    g.fillStyle = STATE_COLOUR[h.state] ?? '#555'
    g.fill()
    g.lineWidth = h.name === selected ? 4 : 2.5
    g.strokeStyle = h.name === selected ? '#111' : zoneColour(zoneOf(h.labels))
    g.stroke()
    if (labels) {
      g.fillStyle = '#111'
      g.fillText(h.name, p.x + NODE_R + 3, p.y - 12)
      g.fillStyle = '#444'
      g.fillText(subnetOf.get(h.name) ?? 'no subnet', p.x + NODE_R + 3, p.y + 2)
    }
  }
}
