import { open, rename, rm } from 'node:fs/promises'
import { PlexusError } from './errors.js'

let seq = 0

/**
 * Readers (and a crash) never see a half-written file: write a temporary file
 * next to it, flush it to disk, then rename it over the target. On any
 * failure the temporary file is removed (a full or read-only disk must not
 * fill up with empty ones) and the error is PLX_FS_WRITE naming the target
 * and the errno (EROFS, ENOSPC, …): CNI reports it as an I/O failure (5).
 */
export async function writeFileAtomic(
  path: string,
  text: string | Iterable<string>,
  mode = 0o644,
): Promise<void> {
  // unique per call, so two writers of the same path never share a temporary file
  const tmp = `${path}.${process.pid}.${seq++}.tmp`
  try {
    const fh = await open(tmp, 'w', mode)
    try {
      // exactly `mode`, whatever the umask: a rewritten file keeps the mode it had
      await fh.chmod(mode)
      // pieces: a large file (the store snapshot) is never one string, and the event loop runs between them
      if (typeof text === 'string') await fh.writeFile(text)
      else for (const piece of text) await fh.write(piece)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined)
    const errno = (err as NodeJS.ErrnoException).code ?? 'EIO'
    throw new PlexusError('PLX_FS_WRITE', `cannot write ${path}: ${errno} (${(err as Error).message})`, {
      path,
      errno,
    })
  }
}
