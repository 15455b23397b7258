// The host's own addresses, for validating a published port's hostIp. The
// ports its sockets hold come from the datapath (datapath/sockets.ts), which
// owns every kernel read and write.
import { networkInterfaces } from 'node:os'

/** IPv4 addresses of this host's interfaces. */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address),
  )
}
