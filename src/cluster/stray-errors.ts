// The last-resort guard for errors that escape libp2p's stream code.
//
// libp2p delivers socket data through EventTarget listeners. When a listener
// throws, Node has already finished that dispatch (the other listeners ran)
// and rethrows the error on the next tick as an uncaught exception, which by
// default ends the process: one connection's bad day would take the agent
// down. Such an error belongs to one connection, whose code has already
// unwound, so logging it and carrying on is safe. The same holds for
// libp2p's typed stream-state errors, thrown from its microtasks too. Any other uncaught
// exception still ends the process: we cannot know what state it left.

/** node_modules packages of the libp2p stream stack (transport, muxer, encrypter, event plumbing) */
const STREAM_PACKAGE =
  /node_modules\/(?:@libp2p|@chainsafe|@multiformats|main-event|it-[\w-]+|uint8arraylist|p-queue)\//
const DISPATCH_FRAME = /node:internal\/event_target/

/**
 * libp2p's own errors about one stream or connection in the wrong state (@libp2p/interface). They
 * keep their name in the bundled agent, where no frame names a package: yamux, for one, sends a
 * window update from a microtask after the stream was aborted (a ping past its deadline), and the
 * StreamStateError it throws there reaches nobody but the process.
 */
const STREAM_ERROR_NAMES = new Set([
  'StreamStateError',
  'StreamResetError',
  'StreamAbortedError',
  'StreamBufferError',
  'MuxerClosedError',
  'ConnectionClosedError',
  'ConnectionClosingError',
])

/**
 * True when err is one of libp2p's stream or connection state errors, or was
 * thrown by a package (not by our code) while libp2p stream code ran inside an
 * EventTarget listener.
 */
export function isStrayStreamError(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  if (STREAM_ERROR_NAMES.has(err.name)) return true
  if (typeof err.stack !== 'string') return false
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
