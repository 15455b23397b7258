import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../lib/fs.js'
import { type Cidr, formatIPv4, mask, parseIPv4 } from './cidr.js'
import { gatewayOf } from './leases.js'

// <runDir>/subnet.env in flannel's format, so tools built for flannel (its
// CNI plugin, docker --bip scripts) read our lease unchanged.

export const SUBNET_ENV = 'subnet.env'

export interface SubnetEnv {
  network: string
  subnet: Cidr
  mtu: number
  ipMasq: boolean
}

/** flannel writes the subnet in gateway form: 10.244.3.1/24, not 10.244.3.0/24. */
export function formatSubnetEnv(e: SubnetEnv): string {
  return [
    `FLANNEL_NETWORK=${e.network}`,
    `FLANNEL_SUBNET=${formatIPv4(gatewayOf(e.subnet))}/${e.subnet.prefix}`,
    `FLANNEL_MTU=${e.mtu}`,
    `FLANNEL_IPMASQ=${e.ipMasq}`,
    '',
  ].join('\n')
}

/** The subnet named by a subnet.env text (either form), or undefined when it names none. */
export function subnetFromEnv(text: string): Cidr | undefined {
  const m = /^FLANNEL_SUBNET=([0-9.]+)\/(\d{1,2})\s*$/m.exec(text)
  const ip = m?.[1] ? parseIPv4(m[1]) : undefined
  const prefix = Number(m?.[2])
  if (ip === undefined || !(prefix >= 1 && prefix <= 32)) return undefined
  return { base: (ip & mask(prefix)) >>> 0, prefix }
}

export async function readSubnetEnv(runDir: string): Promise<Cidr | undefined> {
  try {
    return subnetFromEnv(await readFile(join(runDir, SUBNET_ENV), 'utf8'))
  } catch {
    return undefined
  }
}

export function writeSubnetEnv(runDir: string, e: SubnetEnv): Promise<void> {
  return writeFileAtomic(join(runDir, SUBNET_ENV), formatSubnetEnv(e))
}
