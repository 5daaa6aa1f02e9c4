// Pod network namespaces pinned as files under <state>/netns, so a namespace outlives every process
// in it (the infra container may die; CNI DEL and a restarted berthd still find it).
//
// How: the netns dir is made a shared bind mount of itself (as `ip netns add` does with /run/netns),
// so a pin that a later mount namespace copied is unmounted there too when we unmount it here and
// the namespace is really freed. A pin is made without a process, by the native addon
// (native/src/netns.c) on a thread of its own: unshare(CLONE_NEWNET), loopback up, and a bind
// mount of the thread's nsfs file onto <file> (which must already exist) -- what
// `unshare --net=<file> ip link set lo up` does, without its two execs (about 10 ms and a fork
// each RunPodSandbox). Removal is a lazy unmount plus unlink; both tolerate being already done.
import { promises as fsp } from 'node:fs';
import { isMountPoint } from '../util/mount';
import * as path from 'node:path';
import { alreadyExists, errMessage, internalError, invalidArgument, short } from '../errors';
import { native } from '../util/native';
import type { Logger } from '../log';
import { describeFailure, run, tool } from '../util/run';

/** statfs f_type of nsfs: a path whose statfs says this is a mounted namespace file. */
export const NSFS_MAGIC = 0x6e736673;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export interface PinnedNetns {
  name: string;
  path: string;
  /** false: a plain file left by a crash between creating the file and mounting onto it */
  pinned: boolean;
}

/** True when `p` is a mounted namespace file (a pin, of any kind), false when missing or a plain file. */
export async function isNsPinned(p: string): Promise<boolean> {
  try {
    const st = await fsp.statfs(p);
    return st.type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Creates `dir` for namespace pins and makes it a shared bind mount of itself (idempotent), so a
 * pin that a later mount namespace copied is unmounted there too when it is unmounted here.
 */
export async function makePinDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o711 });
  if (await isMountPoint(dir)) return;
  const r = await run(tool('mount'), ['--make-shared', '--bind', dir, dir]);
  if (r.code !== 0) throw internalError(describeFailure(`mount --bind ${dir}`, r));
}

/** Unmounts (lazily) a namespace pin at `p` if it is one, then deletes the file. Idempotent. */
export async function unpin(p: string): Promise<void> {
  if (await isNsPinned(p)) {
    const n = native();
    try {
      // lazy (MNT_DETACH), as `umount --lazy`: a syscall of microseconds, no process
      n.umount2(p, n.mountConstants.MNT_DETACH | n.mountConstants.UMOUNT_NOFOLLOW);
    } catch (err) {
      // A concurrent remover may have won the race; only a pin still there is a failure.
      if (await isNsPinned(p)) throw internalError(`umount ${p}: ${errMessage(err)}`);
    }
  }
  try {
    await fsp.unlink(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export class NetnsManager {
  readonly dir: string;
  private initDone: Promise<void> | undefined;
  /** names being created right now: a second creator of one name must fail, not stack a mount */
  private readonly creating = new Set<string>();

  constructor(
    dir: string,
    private readonly logger?: Logger,
  ) {
    this.dir = path.resolve(dir);
  }

  /** Path of the pin for `name` (a pod sandbox id). */
  pathFor(name: string): string {
    if (!NAME_RE.test(name)) throw invalidArgument(`invalid network namespace name ${short(name)}`);
    return path.join(this.dir, name);
  }

  /** Creates the dir and makes it a shared bind mount of itself. Idempotent; create() calls it. */
  init(): Promise<void> {
    this.initDone ??= this.doInit().catch((err: unknown) => {
      this.initDone = undefined;
      throw err;
    });
    return this.initDone;
  }

  private doInit(): Promise<void> {
    return makePinDir(this.dir);
  }

  /** Creates a new network namespace with lo up, pinned at pathFor(name); returns that path. */
  async create(name: string): Promise<string> {
    const p = this.pathFor(name);
    if (this.creating.has(name)) throw alreadyExists(`network namespace ${short(name)} is being created`);
    this.creating.add(name);
    try {
      return await this.createPinned(name, p);
    } finally {
      this.creating.delete(name);
    }
  }

  private async createPinned(name: string, p: string): Promise<string> {
    await this.init();
    try {
      // The mount target must exist; O_EXCL makes two creators of one name fail instead of sharing.
      await (await fsp.open(p, 'wx', 0o444)).close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await isNsPinned(p)) throw alreadyExists(`network namespace ${short(name)} already exists`);
      // A plain file: the leftover of a crash between open and mount. Take it over.
    }
    try {
      await new Promise<void>((resolve, reject) =>
        native().pinNetns(p, (err) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      await this.removePath(p).catch(() => undefined);
      throw internalError(`creating network namespace ${short(name)}: ${errMessage(err)}`);
    }
    return p;
  }

  /** Unpins and deletes a namespace by name or by its path (which must be in this dir). Idempotent. */
  async remove(nameOrPath: string): Promise<void> {
    let p: string;
    if (nameOrPath.includes('/')) {
      p = path.resolve(nameOrPath);
      if (path.dirname(p) !== this.dir) throw invalidArgument(`${short(nameOrPath)} is not in ${this.dir}`);
    } else {
      p = this.pathFor(nameOrPath);
    }
    await this.removePath(p);
  }

  private async removePath(p: string): Promise<void> {
    await unpin(p);
    this.logger?.debug('network namespace removed', { path: p });
  }

  /** Every file in the dir (temp files excluded), pinned or not: for recovery and leak checks. */
  async list(): Promise<PinnedNetns[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: PinnedNetns[] = [];
    for (const name of names.sort()) {
      if (!NAME_RE.test(name)) continue;
      const p = path.join(this.dir, name);
      out.push({ name, path: p, pinned: await isNsPinned(p) });
    }
    return out;
  }

  /**
   * Undoes init(): unmounts the dir's bind mount of itself. Refuses while pins remain. For tests
   * and uninstall; berthd leaves the mount in place across restarts.
   */
  async releaseDir(): Promise<void> {
    const left = (await this.list()).filter((n) => n.pinned);
    if (left.length) throw internalError(`${this.dir} still holds ${left.length} pinned namespace(s)`);
    this.initDone = undefined;
    if (!(await isMountPoint(this.dir))) return;
    const r = await run(tool('umount'), [this.dir]);
    if (r.code !== 0) throw internalError(describeFailure(`umount ${this.dir}`, r));
  }
}
