// Capability sets of a container process: Docker's default set, CRI add/drop (with `ALL`), ambient
// capabilities, and privileged containers. Order of operations follows containerd: add ALL, drop
// ALL, then the named adds, then the named drops — so drop ALL + add X gives only X, and add ALL +
// drop X gives everything but X.
import { invalidArgument, short } from '../errors';
import type { Capability__Output } from '../../api/generated';
import type { OciCapabilities } from './spec-types';

/** Linux capabilities by number, up to CAP_CHECKPOINT_RESTORE (40). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** Docker's (and containerd's) default set for unprivileged containers. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const KNOWN = new Set(ALL_CAPABILITIES);

/** `chown`, `CHOWN`, `CAP_CHOWN` → `CAP_CHOWN`; an unknown name throws invalidArgument. */
export function normalizeCapability(name: string, field = 'capabilities'): string {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!KNOWN.has(full)) throw invalidArgument(`${field}: unknown capability ${short(name)}`);
  return full;
}

const isAll = (c: string): boolean => c.trim().toUpperCase() === 'ALL';

/** Capability names in a /proc/<pid>/status mask (e.g. CapEff: 000001fffeffffff), lowest bit first. */
export function capabilitiesFromMask(mask: string | bigint): string[] {
  const bits = typeof mask === 'bigint' ? mask : BigInt(`0x${mask.trim()}`);
  return ALL_CAPABILITIES.filter((_, i) => (bits >> BigInt(i)) & 1n);
}

/** In the canonical (kernel number) order, which makes specs stable and easy to compare. */
function ordered(set: Set<string>): string[] {
  return ALL_CAPABILITIES.filter((c) => set.has(c));
}

export interface CapabilityOptions {
  privileged: boolean;
  request?: Capability__Output | null;
  /**
   * What "all capabilities" means (privileged, add ALL): the daemon's own effective set when known
   * (containerd does the same), since runc cannot grant a capability its caller lacks; default: every
   * capability in ALL_CAPABILITIES.
   */
  hostCapabilities?: readonly string[];
}

/** The process capability sets. Inheritable stays empty unless ambient capabilities are asked for. */
export function buildCapabilities(opts: CapabilityOptions): OciCapabilities {
  const all = opts.hostCapabilities ?? ALL_CAPABILITIES;
  let set: Set<string>;
  const ambient = new Set<string>();
  if (opts.privileged) {
    set = new Set(all);
  } else {
    const req = opts.request;
    const add = req?.add_capabilities ?? [];
    const drop = req?.drop_capabilities ?? [];
    set = new Set(DEFAULT_CAPABILITIES);
    if (add.some(isAll)) for (const c of all) set.add(c);
    if (drop.some(isAll)) set.clear();
    for (const c of add) if (!isAll(c)) set.add(normalizeCapability(c, 'add_capabilities'));
    for (const c of drop) if (!isAll(c)) set.delete(normalizeCapability(c, 'drop_capabilities'));
    for (const c of req?.add_ambient_capabilities ?? []) {
      if (isAll(c)) throw invalidArgument('add_ambient_capabilities: ALL is not allowed');
      const name = normalizeCapability(c, 'add_ambient_capabilities');
      ambient.add(name);
      set.add(name); // an ambient capability must be permitted and in the bounding set
    }
  }
  const caps = ordered(set);
  const amb = ordered(ambient);
  return { bounding: caps, effective: [...caps], permitted: [...caps], inheritable: [...amb], ambient: amb };
}
