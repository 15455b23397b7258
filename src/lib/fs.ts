import { open, rename } from 'node:fs/promises'

/**
 * Readers (and a crash) never see a half-written file: write a temporary file
 * next to it, flush it to disk, then rename it over the target.
 */
let seq = 0

export async function writeFileAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  // unique per call, so two writers of the same path never share a temporary file
  const tmp = `${path}.${process.pid}.${seq++}.tmp`
  const fh = await open(tmp, 'w', mode)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}
