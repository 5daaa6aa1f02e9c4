// The files a pod's containers share, kept in the pod's state dir and bind-mounted into each
// container: /etc/hostname, /etc/hosts, /etc/resolv.conf, and a /dev/shm tmpfs.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DNSConfig__Output } from '../../api/generated';
import { mount, unmount } from '../util/mount';

export interface PodFiles {
  dir: string;
  hostname: string;
  hosts: string;
  resolvConf: string;
  /** the pod's /dev/shm: a tmpfs here, or the host's /dev/shm for host-IPC pods */
  shm: string;
}

export const SHM_SIZE = 64 * 1024 * 1024;

/** /etc/resolv.conf content from the pod's DNS config; undefined means "use the host's". */
export function resolvConfFrom(dns: DNSConfig__Output | null | undefined): string | undefined {
  if (!dns || (dns.servers.length === 0 && dns.searches.length === 0 && dns.options.length === 0))
    return undefined;
  const lines: string[] = [];
  if (dns.searches.length) lines.push(`search ${dns.searches.join(' ')}`);
  for (const s of dns.servers) lines.push(`nameserver ${s}`);
  if (dns.options.length) lines.push(`options ${dns.options.join(' ')}`);
  return lines.join('\n') + '\n';
}

export function hostsFile(hostname: string, ips: string[]): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  for (const ip of ips) lines.push(`${ip}\t${hostname}`);
  return lines.join('\n') + '\n';
}

export interface PodFilesInput {
  dir: string;
  hostname: string;
  hostNetwork: boolean;
  hostIpc: boolean;
  dns: DNSConfig__Output | null | undefined;
}

/** Writes the pod files and mounts the shm tmpfs. Safe to call again on a half-made dir. */
export async function createPodFiles(input: PodFilesInput): Promise<PodFiles> {
  const { dir } = input;
  await fsp.mkdir(dir, { recursive: true, mode: 0o711 });
  const files: PodFiles = {
    dir,
    hostname: path.join(dir, 'hostname'),
    hosts: path.join(dir, 'hosts'),
    resolvConf: path.join(dir, 'resolv.conf'),
    shm: input.hostIpc ? '/dev/shm' : path.join(dir, 'shm'),
  };
  const hostname = input.hostname || os.hostname();
  await fsp.writeFile(files.hostname, hostname + '\n', { mode: 0o644 });
  if (input.hostNetwork) await fsp.copyFile('/etc/hosts', files.hosts);
  else await fsp.writeFile(files.hosts, hostsFile(hostname, []), { mode: 0o644 });
  const resolv = resolvConfFrom(input.dns);
  if (resolv !== undefined) await fsp.writeFile(files.resolvConf, resolv, { mode: 0o644 });
  else
    await fsp.copyFile('/etc/resolv.conf', files.resolvConf).catch(() => fsp.writeFile(files.resolvConf, ''));
  if (!input.hostIpc) {
    await fsp.mkdir(files.shm, { recursive: true, mode: 0o1777 });
    await unmount(files.shm);
    await mount(
      {
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'nodev', 'noexec', 'mode=1777', `size=${SHM_SIZE}`],
      },
      files.shm,
    );
  }
  return files;
}

/** Rewrites /etc/hosts once the pod's IPs are known, so the hostname resolves to them. */
export async function writeHosts(files: PodFiles, hostname: string, ips: string[]): Promise<void> {
  await fsp.writeFile(files.hosts, hostsFile(hostname || os.hostname(), ips), { mode: 0o644 });
}

/** Unmounts the shm tmpfs and removes the dir. Idempotent. */
export async function removePodFiles(dir: string): Promise<void> {
  await unmount(path.join(dir, 'shm'));
  await fsp.rm(dir, { recursive: true, force: true });
}
