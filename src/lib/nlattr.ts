// Netlink attributes (struct nlattr / rtattr: u16 length with the header, u16 type, payload padded
// to 4 bytes), as the readers of kernel dumps in this folder walk them. Pure.

/** the type bits; the top two are the nested and byte-order flags */
const NLA_TYPE_MASK = 0x3fff

/** a buffer of attributes by type (a repeated type: the last); stops at the first malformed one */
export function nlAttributes(b: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>()
  for (let off = 0; off + 4 <= b.length; ) {
    const len = b.readUInt16LE(off)
    if (len < 4 || off + len > b.length) break
    out.set(b.readUInt16LE(off + 2) & NLA_TYPE_MASK, b.subarray(off + 4, off + len))
    off += (len + 3) & ~3
  }
  return out
}

/** the payload of the first attribute of a type, found by walking the headers alone (nothing else is read) */
export function findAttr(b: Buffer, type: number): Buffer | undefined {
  for (let off = 0; off + 4 <= b.length; ) {
    const len = b.readUInt16LE(off)
    if (len < 4 || off + len > b.length) return undefined
    if ((b.readUInt16LE(off + 2) & NLA_TYPE_MASK) === type) return b.subarray(off + 4, off + len)
    off += (len + 3) & ~3
  }
  return undefined
}
