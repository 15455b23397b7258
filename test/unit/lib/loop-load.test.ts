import t from 'tap'
import { loopLoad } from '../../../src/lib/loop-load.js'

t.test(
  'the loop busy share: near 1 over a window spent computing, near 0 over one spent waiting',
  async (t) => {
    const busy = loopLoad(200)
    const spinUntil = performance.now() + 250
    while (performance.now() < spinUntil) {
      // a loop with no room: one callback that does not yield
    }
    const hot = busy()
    t.ok(hot > 0.8, `after 250 ms of computing: ${hot.toFixed(2)}`)
    t.equal(busy(), hot, 'read again within the window: the same figure, nothing recomputed')
    await new Promise((r) => setTimeout(r, 250))
    const cold = busy()
    t.ok(cold < 0.3, `after 250 ms of waiting: ${cold.toFixed(2)}`)
  },
)
