// Runs a short program without holding the agent's main thread: native/spawn.c
// starts it with posix_spawn on a thread-pool thread (the child shares the
// agent's memory until it execs; no page tables are copied) and reports its
// exit through a pidfd on Node's loop. Node's child_process forks on the main
// thread and waits there for the exec. Why native, and what it measured:
// native/README.md ("spawn").

import { Socket } from 'node:net'
import { constants } from 'node:os'
import { loadAddon } from './native.js'
import { signalName } from './proc.js'

interface Child {
  /** the read end of the pipe the program's stdout and stderr both go to */
  fd: number
  /** signals it (through its pidfd: false once it has exited) */
  kill(signal: number): boolean
}

interface SpawnAddon {
  spawn(
    file: string,
    args: string[],
    onStarted: (err: Error | null, child?: Child) => void,
    onExit: (code: number, signal: number) => void,
  ): void
}

export interface Ran {
  /** the exit status; null when a signal ended it */
  code: number | null
  /** the signal's name (SIGKILL after a timeout), null when it exited */
  signal: string | null
  /** stdout and stderr as written, interleaved, cut at maxOutput characters */
  output: string
  timedOut: boolean
}

export interface RunOptions {
  /** killed (SIGKILL) after this long */
  timeoutMs: number
  /** characters of output kept */
  maxOutput: number
}

/**
 * How long the output may stay open after the program exited: a process it
 * left behind can hold the pipe forever, and the result must not wait for it.
 */
const DRAIN_AFTER_EXIT_MS = 100

/**
 * Runs file (looked up in PATH) with args, stdin from /dev/null, and collects
 * its output. Rejects only when it cannot start (the error's code: ENOENT,
 * EACCES, ...); a failing program resolves with its status.
 */
export function run(file: string, args: string[], o: RunOptions): Promise<Ran> {
  const addon = loadAddon<SpawnAddon>('plexus_spawn', 'PLX_SPAWN_ADDON')
  return new Promise((resolve, reject) => {
    let output = ''
    let exit: { code: number; signal: number } | undefined
    let ended = false
    let timedOut = false
    let out: Socket | undefined
    let timer: NodeJS.Timeout | undefined
    let drain: NodeJS.Timeout | undefined
    const finish = (): void => {
      if (!exit || !ended) return
      clearTimeout(timer)
      clearTimeout(drain)
      resolve({
        code: exit.signal ? null : exit.code,
        signal: exit.signal ? signalName(exit.signal) : null,
        output,
        timedOut,
      })
    }
    const started = (err: Error | null, child?: Child): void => {
      if (err || !child) {
        reject(err)
        return
      }
      out = new Socket({ fd: child.fd, readable: true, writable: false })
      out.setEncoding('utf8')
      out.on('data', (s: string) => {
        if (output.length < o.maxOutput) output += s.slice(0, o.maxOutput - output.length)
      })
      // a read error ends the output like its end does: the exit status still tells
      out.on('error', () => out?.destroy())
      out.on('close', () => {
        ended = true
        finish()
      })
      timer = setTimeout(() => {
        timedOut = true
        child.kill(constants.signals.SIGKILL)
      }, o.timeoutMs)
    }
    // the exit is reported after the start, on a later turn of the loop: out exists by then
    addon.spawn(file, args, started, (code, signal) => {
      exit = { code, signal }
      drain = setTimeout(() => out?.destroy(), DRAIN_AFTER_EXIT_MS)
      finish()
    })
  })
}
