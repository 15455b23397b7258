// The last-resort guard for errors that escape libp2p's stream code.
//
// libp2p delivers socket data through EventTarget listeners. When a listener
// throws, Node has already finished that dispatch (the other listeners ran)
// and rethrows the error on the next tick as an uncaught exception, which by
// default ends the process: one connection's bad day would take the agent
// down. Such an error belongs to one connection, whose code has already
// unwound, so logging it and carrying on is safe. Any other uncaught
// exception still ends the process: we cannot know what state it left.

/** node_modules packages of the libp2p stream stack (transport, muxer, encrypter, event plumbing) */
const STREAM_PACKAGE =
  /node_modules\/(?:@libp2p|@chainsafe|@multiformats|main-event|it-[\w-]+|uint8arraylist|p-queue)\//
const DISPATCH_FRAME = /node:internal\/event_target/

/**
 * True when err was thrown by a package (not by our code) while libp2p stream
 * code ran inside an EventTarget listener.
 */
export function isStrayStreamError(err: unknown): boolean {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return false
  const frames = err.stack.split('\n').filter((l) => /^\s+at /.test(l))
  const thrower = frames.find((f) => !/\(node:|at node:/.test(f))
  return (
    thrower?.includes('/node_modules/') === true &&
    frames.some((f) => STREAM_PACKAGE.test(f)) &&
    frames.some((f) => DISPATCH_FRAME.test(f))
  )
}

/**
 * Installs the guard on `proc`: a stray stream error goes to onStray; anything
 * else to onFatal (which should end the process, as Node would have).
 * Returns the uninstaller.
 */
export function guardStrayStreamErrors(
  proc: NodeJS.Process,
  onStray: (err: Error) => void,
  onFatal: (err: unknown) => void,
): () => void {
  const handler = (err: unknown) => (isStrayStreamError(err) ? onStray(err as Error) : onFatal(err))
  proc.on('uncaughtException', handler)
  return () => proc.off('uncaughtException', handler)
}
