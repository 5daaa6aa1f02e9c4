// conmon's command line for creating (or restoring) a container (pure, so it is unit-tested). conmon forks a
// monitor that runs `runc create`, reports the pid (or runc's error) on the sync pipe, copies the
// container's stdio into the CRI log, and writes the exit code when the container ends.
import type { CreateOptions } from './types';
import type { RuntimePaths } from './paths';

export interface ConmonArgsInput {
  runtimePath: string;
  runtimeRoot: string;
  paths: RuntimePaths;
  create: CreateOptions;
  /** systemd cgroup driver: conmon (-s) and the runtime (--systemd-cgroup) read cgroupsPath as `slice:prefix:name` */
  systemdCgroup?: boolean;
}

export function conmonCreateArgs({
  runtimePath,
  runtimeRoot,
  paths,
  create: c,
  systemdCgroup,
}: ConmonArgsInput): string[] {
  const args = [
    '--api-version',
    '1',
    '-c',
    c.id,
    '-u',
    c.id,
    '-n',
    c.id,
    '-r',
    runtimePath,
    '-b',
    c.bundle,
    '-p',
    paths.containerPidFile(c.id),
    '-P',
    paths.conmonPidFile(c.id),
    '--exit-dir',
    paths.exitsDir,
    '--persist-dir',
    paths.persistDir(c.id),
    '--socket-dir-path',
    paths.socketsDir,
    '-l',
    `k8s-file:${c.logPath}`,
    '--runtime-arg',
    `--root=${runtimeRoot}`,
  ];
  if (systemdCgroup) args.push('--runtime-arg', '--systemd-cgroup', '--systemd-cgroup');
  if (c.tty) args.push('-t');
  if (c.stdin) {
    args.push('-i');
    // CRI stdin_once: close stdin when the first attach ends; otherwise keep it open across attaches.
    if (!c.stdinOnce) args.push('--leave-stdin-open');
  }
  if (c.logSizeMax !== undefined && c.logSizeMax > 0)
    args.push('--log-size-max', String(Math.floor(c.logSizeMax)));
  // conmon then runs `runc restore --bundle B --pid-file P --detach --image-path I --work-path B
  // <opts> <id>` instead of `runc create` (conmon's runtime_args.c), as CRI-O restores
  if (c.restore) {
    args.push('--restore', c.restore.imagePath);
    for (const o of c.restore.runtimeOpts) args.push('--runtime-opt', o);
  }
  return args;
}

/** What conmon wrote on the sync pipe (API version 1): `{"data": pid}` or `{"data": -1, "message": "..."}`. */
export interface SyncMessage {
  data: number;
  message?: string;
}

/** Parses the first complete JSON line of the sync pipe; undefined when none is complete yet. */
export function parseSyncMessage(buf: string): SyncMessage | undefined {
  const nl = buf.indexOf('\n');
  if (nl < 0) return undefined;
  const line = buf.slice(0, nl).trim();
  const rec = JSON.parse(line) as { data?: unknown; pid?: unknown; message?: unknown };
  // API version 0 used "pid"; accept it so an older conmon still works.
  const data = typeof rec.data === 'number' ? rec.data : typeof rec.pid === 'number' ? rec.pid : NaN;
  if (!Number.isFinite(data)) throw new Error(`unexpected conmon sync message: ${line.slice(0, 200)}`);
  return { data, message: typeof rec.message === 'string' ? rec.message : undefined };
}

/** conmon's exit file holds a decimal status (-1 when its own timeout fired). */
export function parseExitFile(text: string): number | undefined {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return undefined;
  return Number.parseInt(t, 10);
}

/** runc accepts names with or without SIG and numbers; normalise to what it takes. */
export function normalizeSignal(signal: string | number): string {
  if (typeof signal === 'number') {
    if (!Number.isInteger(signal) || signal <= 0 || signal > 64) throw new Error(`invalid signal ${signal}`);
    return String(signal);
  }
  const s = signal.trim().toUpperCase();
  if (/^\d+$/.test(s)) return normalizeSignal(Number(s));
  if (!/^(SIG)?[A-Z0-9+-]+$/.test(s))
    throw new Error(`invalid signal ${JSON.stringify(signal.slice(0, 20))}`);
  return s.startsWith('SIG') ? s : `SIG${s}`;
}
