// The pod's user namespace (CRI userns_options mode POD, Kubernetes hostUsers: false).
//
// Berth pins the user namespace AND the pod's network namespace together, the network namespace
// created inside the user namespace so that the pod's root owns it. Why not let the infra container
// create the user namespace: runc 1.1.5 joins namespaces user-first, so a container that joins the
// pod's user namespace can then not setns() into a network namespace owned by the host's (EPERM),
// and sysfs cannot be mounted in a network namespace the container's user namespace does not own.
// With both pinned here before the infra container: CNI runs on the pin as before (host root is
// privileged over child namespaces), every container (infra included) joins the same user and
// network namespaces, its new ipc/uts/pid/mount namespaces belong to the pod's user namespace, and
// /sys is a real sysfs of the pod's network namespace.
//
// How: one `unshare --user --net sh -c 'echo; read'` child; when it says it is in, Berth writes its
// uid_map/gid_map (host root may write any mapping), bind-mounts /proc/<pid>/ns/{user,net} onto the
// pin files, and ends the child by closing its stdin. The pins outlive every process.
import { spawnProcess } from '../util/spawn';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { PodSandboxConfig__Output, ContainerConfig__Output } from '../../api/generated';
import { alreadyExists, internalError, invalidArgument, short } from '../errors';
import type { Logger } from '../log';
import { checkIdMap, sameIdMap, type IdMap, type IdRange } from '../snapshot/idmap';
import { native } from '../util/native';
import { describeFailure, run, SYSTEM_PATH, tool } from '../util/run';
import { isNsPinned, unpin, type NetnsManager } from '../network/netns';
import { isMountPoint } from '../util/mount';

type NsOptions = { userns_options?: { mode: string; uids: RangeIn[]; gids: RangeIn[] } | null } | null;
type RangeIn = { host_id: number; container_id: number; length: number };

function ranges(list: RangeIn[]): IdRange[] {
  return list.map((m) => ({ containerID: m.container_id, hostID: m.host_id, size: m.length }));
}

function idMapOf(ns: NsOptions | undefined, where: string): IdMap | undefined {
  const u = ns?.userns_options;
  if (!u || u.mode === 'NODE') return undefined;
  if (u.mode !== 'POD')
    throw invalidArgument(`${where}.userns_options: mode ${short(u.mode)} is not supported (POD or NODE)`);
  const map = { uids: ranges(u.uids ?? []), gids: ranges(u.gids ?? []) };
  try {
    checkIdMap(map);
  } catch (err) {
    throw invalidArgument(`${where}.userns_options: ${(err as Error).message}`);
  }
  return map;
}

/**
 * The pod's user-namespace mapping, or undefined when it uses the host's. Refuses what cannot
 * work (and what Kubernetes forbids with hostUsers: false): host network, IPC or PID.
 */
export function podIdMap(config: PodSandboxConfig__Output): IdMap | undefined {
  const ns = config.linux?.security_context?.namespace_options;
  const map = idMapOf(ns, 'linux.security_context.namespace_options');
  if (!map) return undefined;
  // host network is allowed (RuntimeFeatures.user_namespaces_host_network): the pod's user namespace
  // is pinned without a network namespace and /sys is bound from the host (see internal/oci/mounts.ts)
  for (const k of ['ipc', 'pid'] as const)
    if (ns?.[k] === 'NODE')
      throw invalidArgument(
        `linux.security_context.namespace_options: a pod with its own user namespace cannot use the host's ${k} namespace`,
      );
  return map;
}

/** Checks that a container asks for its pod's user namespace exactly (or for none when the pod has none). */
export function checkContainerIdMap(pod: IdMap | undefined, config: ContainerConfig__Output): void {
  const mine = idMapOf(
    config.linux?.security_context?.namespace_options,
    'linux.security_context.namespace_options',
  );
  if (!sameIdMap(pod, mine))
    throw invalidArgument(
      pod
        ? 'linux.security_context.namespace_options.userns_options must repeat the pod sandbox mapping (mode POD, same uids and gids)'
        : 'linux.security_context.namespace_options.userns_options: the pod sandbox has no user namespace',
    );
}

/** uid_map / gid_map file content. */
export function idMapFile(list: readonly IdRange[]): string {
  return list.map((r) => `${r.containerID} ${r.hostID} ${r.size}\n`).join('');
}

/** True when `<runtime> features` says the runtime knows user namespaces. */
export function runtimeHasUserns(raw: unknown): boolean {
  const ns = (raw as { linux?: { namespaces?: unknown } } | undefined)?.linux?.namespaces;
  return Array.isArray(ns) && ns.includes('user');
}

let kernelProbe: Promise<boolean> | undefined;

/** Whether this kernel lets root create user namespaces (asked once). */
export function kernelHasUserns(): Promise<boolean> {
  kernelProbe ??= (async () => {
    try {
      const max = Number((await fsp.readFile('/proc/sys/user/max_user_namespaces', 'utf8')).trim());
      if (!(max > 0)) return false;
      const r = await run(tool('unshare'), ['--user', '--net', 'true'], { timeoutMs: 10_000 });
      return r.code === 0;
    } catch {
      return false;
    }
  })();
  return kernelProbe;
}

/** Adds o+x to each dir so the pod's root (an unprivileged host uid) can reach paths below them. */
export async function makeTraversable(dirs: readonly string[]): Promise<void> {
  for (const d of dirs) {
    const st = await fsp.stat(d);
    if ((st.mode & 0o001) === 0) await fsp.chmod(d, (st.mode & 0o7777) | 0o001);
  }
}

export interface PodNamespaces {
  usernsPath: string;
  /** absent for a host-network pod */
  netnsPath?: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const READY_TIMEOUT_MS = 10_000;

/** Pinned user namespaces under `dir`, one per pod, each with its pod's network namespace. */
export class UsernsManager {
  readonly dir: string;
  private initDone: Promise<void> | undefined;

  constructor(
    dir: string,
    private readonly netns: NetnsManager,
    private readonly log: Logger,
  ) {
    this.dir = path.resolve(dir);
  }

  pathFor(name: string): string {
    if (!NAME_RE.test(name)) throw invalidArgument(`invalid user namespace name ${short(name)}`);
    return path.join(this.dir, name);
  }

  /** The dir is a shared bind mount of itself, as the netns dir: unpinning reaches copies of the pin. */
  private init(): Promise<void> {
    this.initDone ??= (async () => {
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o711 });
      if (await isMountPoint(this.dir)) return;
      const n = native();
      const c = n.mountConstants;
      n.mount(this.dir, this.dir, null, c.MS_BIND, null);
      n.mount(null, this.dir, null, c.MS_SHARED, null);
    })().catch((err: unknown) => {
      this.initDone = undefined;
      throw err;
    });
    return this.initDone;
  }

  /**
   * Creates and pins the pod's user namespace with `map`, and its network namespace (lo up) unless
   * `hostNetwork` (the pod then uses the host's network namespace).
   */
  async create(name: string, map: IdMap, hostNetwork = false): Promise<PodNamespaces> {
    checkIdMap(map);
    await this.init();
    await this.netns.init();
    const usernsPath = this.pathFor(name);
    const netnsPath = hostNetwork ? undefined : this.netns.pathFor(name);
    for (const p of netnsPath ? [usernsPath, netnsPath] : [usernsPath]) {
      try {
        await (await fsp.open(p, 'wx', 0o444)).close();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (await isNsPinned(p)) throw alreadyExists(`namespace pin ${p} already exists`);
      }
    }
    try {
      await this.spawnPinned(map, usernsPath, netnsPath);
      // host root is privileged over the child namespaces: bring loopback up from outside
      if (netnsPath) {
        const r = await run(tool('nsenter'), [`--net=${netnsPath}`, tool('ip'), 'link', 'set', 'lo', 'up']);
        if (r.code !== 0)
          throw internalError(describeFailure('ip link set lo up in the pod network namespace', r));
      }
    } catch (err) {
      await this.remove(name).catch(() => undefined);
      if (netnsPath) await this.netns.remove(netnsPath).catch(() => undefined);
      throw err;
    }
    this.log.debug('pod user namespace pinned', { name, usernsPath, netnsPath });
    return { usernsPath, netnsPath };
  }

  private spawnPinned(map: IdMap, usernsPath: string, netnsPath: string | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawnProcess(
        tool('unshare'),
        ['--user', ...(netnsPath ? ['--net'] : []), '--', '/bin/sh', '-c', 'echo in; read _ || :'],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { PATH: SYSTEM_PATH },
        },
      );
      let settled = false;
      let stderr = '';
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        child.kill('SIGKILL');
        reject(err);
      };
      const timer = setTimeout(
        () => fail(internalError('creating the pod user namespace timed out')),
        READY_TIMEOUT_MS,
      );
      child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2048)));
      child.on('error', (e) => fail(e));
      child.on('close', (code) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        if (code === 0) resolve();
        else reject(internalError(`unshare exited with ${code}: ${stderr.trim()}`));
      });
      child.stdout?.once('data', () => {
        const pid = child.pid!;
        void (async () => {
          try {
            await writeMap(`/proc/${pid}/uid_map`, idMapFile(map.uids));
            await writeMap(`/proc/${pid}/gid_map`, idMapFile(map.gids));
            const n = native();
            n.mount(`/proc/${pid}/ns/user`, usernsPath, null, n.mountConstants.MS_BIND, null);
            if (netnsPath) n.mount(`/proc/${pid}/ns/net`, netnsPath, null, n.mountConstants.MS_BIND, null);
            child.stdin?.end();
          } catch (err) {
            fail(err as Error);
          }
        })();
      });
    });
  }

  /** Unpins a pod's user namespace (by name or pin path). Idempotent. */
  async remove(nameOrPath: string): Promise<void> {
    const p = nameOrPath.includes('/') ? path.resolve(nameOrPath) : this.pathFor(nameOrPath);
    if (path.dirname(p) !== this.dir) throw invalidArgument(`${short(nameOrPath)} is not in ${this.dir}`);
    await unpin(p);
  }

  /** Names of the pins present (for leak checks and reconcile). */
  async list(): Promise<string[]> {
    try {
      return (await fsp.readdir(this.dir)).filter((n) => NAME_RE.test(n)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
}

/** One write(2): the kernel takes a map file only whole, in a single write. */
async function writeMap(file: string, content: string): Promise<void> {
  const fh = await fsp.open(file, 'w');
  try {
    const buf = Buffer.from(content);
    const { bytesWritten } = await fh.write(buf, 0, buf.length, null);
    if (bytesWritten !== buf.length) throw internalError(`short write to ${file}`);
  } finally {
    await fh.close();
  }
}
