// A pod's IPC and UTS namespaces pinned as files under <state>/podns (<id>.ipc, <id>.uts), for
// pods that run without an infra container (CRI-O's drop_infra_ctr): the pins hold the namespaces
// that the pause process would otherwise hold, and the pod's containers join them by path. Made
// without a process, by the native addon (native/src/netns.c pinIpcUts) on a thread of its own:
// unshare, sethostname, one bind mount each; the dir is a shared bind mount of itself, as the
// netns dir is (network/netns.ts). Removal is a lazy unmount plus unlink; both tolerate being done.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { errMessage, internalError, invalidArgument, short } from '../errors';
import { isNsPinned, makePinDir, unpin } from '../network/netns';
import { native } from '../util/native';

const ID_RE = /^[a-f0-9]{64}$/;

export interface IpcUtsPaths {
  ipc?: string;
  uts?: string;
}

export class IpcUtsPins {
  readonly dir: string;
  private initDone: Promise<void> | undefined;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  /** Where a pod's pins go; only the namespaces asked for. */
  pathsFor(id: string, want: { ipc: boolean; uts: boolean }): IpcUtsPaths {
    if (!ID_RE.test(id)) throw invalidArgument(`invalid pod sandbox id ${short(id)}`);
    return {
      ...(want.ipc ? { ipc: path.join(this.dir, `${id}.ipc`) } : {}),
      ...(want.uts ? { uts: path.join(this.dir, `${id}.uts`) } : {}),
    };
  }

  private init(): Promise<void> {
    this.initDone ??= makePinDir(this.dir).catch((err: unknown) => {
      this.initDone = undefined;
      throw err;
    });
    return this.initDone;
  }

  /**
   * Makes and pins the namespaces `paths` names, the UTS one with `hostname` (empty: the host's
   * name stays, as in an infra container given none).
   */
  async create(paths: IpcUtsPaths, hostname: string): Promise<void> {
    if (!paths.ipc && !paths.uts) return;
    await this.init();
    const files = [paths.ipc, paths.uts].filter((p): p is string => p !== undefined);
    for (const p of files) if (await isNsPinned(p)) throw internalError(`${p} is already a pinned namespace`);
    try {
      // the mount targets must exist; a plain file left by a crash before its mount is taken over
      for (const p of files) await (await fsp.open(p, 'a', 0o444)).close();
      await new Promise<void>((resolve, reject) =>
        native().pinIpcUts(paths.ipc ?? null, paths.uts ?? null, hostname || null, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    } catch (err) {
      await this.remove(paths).catch(() => undefined);
      throw internalError(`pinning the pod's IPC/UTS namespaces: ${errMessage(err)}`);
    }
  }

  /** Unpins and deletes the files `paths` names. Idempotent. */
  async remove(paths: IpcUtsPaths): Promise<void> {
    for (const p of [paths.ipc, paths.uts]) {
      if (p === undefined) continue;
      if (path.dirname(path.resolve(p)) !== this.dir)
        throw invalidArgument(`${short(p)} is not in ${this.dir}`);
      await unpin(p);
    }
  }

  /** Every pin file in the dir by pod id (pinned or left plain by a crash): for reconcile. */
  async list(): Promise<Map<string, IpcUtsPaths>> {
    const out = new Map<string, IpcUtsPaths>();
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw err;
    }
    for (const name of names) {
      const m = /^([a-f0-9]{64})\.(ipc|uts)$/.exec(name);
      if (!m) continue;
      const id = m[1] as string;
      const cur = out.get(id) ?? {};
      cur[m[2] as 'ipc' | 'uts'] = path.join(this.dir, name);
      out.set(id, cur);
    }
    return out;
  }

  /** True when every pin `paths` names is still a mounted namespace file. */
  async intact(paths: IpcUtsPaths): Promise<boolean> {
    for (const p of [paths.ipc, paths.uts]) if (p !== undefined && !(await isNsPinned(p))) return false;
    return true;
  }
}
