// Where the driver keeps each container's runtime files under the state dir. One place so that
// create, cleanup and recovery agree.
import * as path from 'node:path';

export class RuntimePaths {
  constructor(readonly stateDir: string) {}

  get exitsDir(): string {
    return path.join(this.stateDir, 'exits');
  }
  get pidsDir(): string {
    return path.join(this.stateDir, 'pids');
  }
  get socketsDir(): string {
    return path.join(this.stateDir, 'sockets');
  }
  get persistRoot(): string {
    return path.join(this.stateDir, 'persist');
  }
  get execDir(): string {
    return path.join(this.stateDir, 'exec');
  }

  /** conmon writes the exit code here (its --exit-dir). */
  exitFile(id: string): string {
    return path.join(this.exitsDir, id);
  }
  /** conmon's --persist-dir and working dir: it holds `exit` and, after an OOM kill, `oom`. */
  persistDir(id: string): string {
    return path.join(this.persistRoot, id);
  }
  oomFile(id: string): string {
    return path.join(this.persistDir(id), 'oom');
  }
  containerPidFile(id: string): string {
    return path.join(this.pidsDir, `${id}.pid`);
  }
  conmonPidFile(id: string): string {
    return path.join(this.pidsDir, `${id}.conmon`);
  }
  /** conmon makes sockets/<id> a symlink to the bundle, so the attach socket is reachable by a short path. */
  attachSocket(id: string): string {
    return path.join(this.socketsDir, id, 'attach');
  }
  socketLink(id: string): string {
    return path.join(this.socketsDir, id);
  }
}

export function ctlFifo(bundle: string): string {
  return path.join(bundle, 'ctl');
}

export function winszFifo(bundle: string): string {
  return path.join(bundle, 'winsz');
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Container ids become file names and runc/conmon arguments: keep them to a safe alphabet. */
export function isValidRuntimeId(id: string): boolean {
  return ID_RE.test(id);
}
