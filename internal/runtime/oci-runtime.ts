// The OCI runtime driver: the one place that knows how to drive conmon and runc. Containers are
// created by conmon (which runs `runc create`, then stays as the container's monitor: logs, attach
// socket, exit file), everything else is a plain runc command. Nothing here keeps state that
// cannot be rebuilt from disk: after a daemon restart the same calls work on the same ids.
import { promises as fsp, constants as fsc } from 'node:fs';
import * as path from 'node:path';
import { BerthError, Status, errMessage, invalidArgument, notFound, short } from '../errors';
import type { Logger } from '../log';
import { conmonCreateArgs, normalizeSignal, parseExitFile } from './conmon-args';
import { spawnConmon } from './conmon';
import { ExecHelper } from './exec-helper';
import {
  cgroupHierarchies,
  conmonCgroupfsPath,
  moveToCgroupfs,
  moveToScope,
  removeCgroupfs,
  sliceOf,
  type CgroupHierarchy,
} from './conmon-cgroup';
import { execSyncRunc } from './exec-sync';
import { ExitWatcher } from './exit-watcher';
import { readPidFile } from './pid-file';
import { FileEvents } from './file-events';
import { RuntimePaths, ctlFifo, isValidRuntimeId } from './paths';
import { RuncCli } from './runc';
import { hybridWithV2Controllers, isCrun, writeLauncher } from './crun-hybrid';
import {
  checkpointUnsupported,
  criuUnavailable,
  detectFeatures,
  type RuntimeBinaryFeatures,
} from './features';
import { callerFault, isRuncNotFound, isRuncNotRunning } from './runc-error';
import type {
  CreateOptions,
  CreateResult,
  ExecSyncOptions,
  ExecSyncResult,
  ExitInfo,
  LinuxResources,
  RuncState,
  RuntimeOptions,
} from './types';
import { uniqueSuffix } from '../util/unique';

const DEFAULT_CREATE_TIMEOUT_MS = 60_000;
/** How long stop waits after SIGKILL before giving up (a process stuck in D state). */
const KILL_WAIT_MS = 30_000;
/** How long delete waits for conmon to write the exit file and leave. */
const CONMON_EXIT_WAIT_MS = 5_000;
/** conmon's exit code when it could not record one; what CRI-O reports for an unknown exit too. */
const UNKNOWN_EXIT_CODE = 255;

export class OciRuntime {
  readonly paths: RuntimePaths;
  private runc: RuncCli;
  private readonly log: Logger;
  private readonly exits: ExitWatcher;
  private readonly exitEvents: FileEvents;
  private readonly execEvents: FileEvents;
  /** Bundle of each container seen, to spare a `runc state` on log reopen and resize. */
  private readonly bundles = new Map<string, string>();
  private featuresCache?: Promise<RuntimeBinaryFeatures>;
  private readonly execHelper?: ExecHelper;
  private readonly execCounts = { native: 0, runtime: 0 };
  /** cgroup hierarchies mounted here, read at the first conmon move */
  private hierarchies?: CgroupHierarchy[];

  constructor(private readonly opts: RuntimeOptions) {
    this.paths = new RuntimePaths(opts.stateDir);
    this.runc = new RuncCli(opts.runtimePath, opts.runtimeRoot, opts.systemdCgroup);
    this.log = opts.log;
    this.exitEvents = new FileEvents(this.paths.exitsDir, this.log);
    this.execEvents = new FileEvents(this.paths.execDir, this.log);
    if (opts.execHelperPath)
      this.execHelper = new ExecHelper(opts.execHelperPath, this.paths.execDir, this.log);
    this.exits = new ExitWatcher({
      events: this.exitEvents,
      log: this.log,
      sweepMs: opts.exitSweepMs,
      check: async (id) => (await this.exitInfoOrLost(id)) !== undefined,
      monitorPid: (id) => this.conmonPid(id),
    });
  }

  /** Creates the state dirs. Idempotent; touches no container. */
  async init(): Promise<void> {
    for (const d of [
      this.opts.stateDir,
      this.paths.exitsDir,
      this.paths.pidsDir,
      this.paths.socketsDir,
      this.paths.persistRoot,
      this.paths.execDir,
    ]) {
      await fsp.mkdir(d, { recursive: true, mode: 0o700 });
    }
    await fsp.mkdir(this.opts.runtimeRoot, { recursive: true, mode: 0o700 });
    if (isCrun(this.opts.runtimePath) && (await hybridWithV2Controllers())) {
      const launcher = await writeLauncher(this.opts.stateDir, this.opts.runtimePath);
      this.runc = new RuncCli(launcher, this.opts.runtimeRoot, this.opts.systemdCgroup);
      this.log.info('hybrid host with cgroup2 controllers: crun runs through a launcher', { launcher });
    }
    // Leftovers of exec-syncs interrupted by a crash.
    for (const name of await fsp.readdir(this.paths.execDir)) {
      await fsp.rm(path.join(this.paths.execDir, name), { force: true, recursive: true });
    }
    await this.adoptConmons();
  }

  /**
   * conmons still in berthd's own cgroup (started by a berthd that did not move them, or killed
   * between start and move) are moved now, so the next stop of berthd cannot take them along.
   */
  private async adoptConmons(): Promise<void> {
    if (!this.opts.conmonCgroup) return;
    const own = await fsp.readFile('/proc/self/cgroup', 'utf8').catch(() => '');
    let names: string[];
    try {
      names = await fsp.readdir(this.paths.pidsDir);
    } catch {
      return;
    }
    for (const n of names) {
      const id = n.slice(0, -'.conmon'.length);
      if (!n.endsWith('.conmon') || !isValidRuntimeId(id)) continue;
      const pid = await this.conmonPid(id);
      if (pid === undefined) continue;
      const cg = await fsp.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => undefined);
      if (cg !== own) continue;
      const st = await this.state(id).catch(() => undefined);
      if (!st?.bundle) continue;
      this.log.info('moving a conmon out of berthd cgroup', { id, conmonPid: pid });
      await this.placeConmon(id, st.bundle, pid);
    }
  }

  /** Stops the exit watcher; containers are left alone. */
  close(): void {
    this.exits.close();
    this.exitEvents.close();
    this.execEvents.close();
  }

  attachSocketPath(id: string): string {
    return this.paths.attachSocket(checkId(id));
  }

  /** conmon's control FIFO (window resize `1 H W`, log reopen `2 0 0`). */
  async ctlFifoPath(id: string): Promise<string> {
    return ctlFifo(await this.bundleOf(id));
  }

  /**
   * conmon → runc create. Resolves with the container's pid once runc has created it (the process
   * waits in runc init until start). On failure, runc's own message is in the error and nothing of
   * the attempt is left behind (runc state, conmon, pid/exit files).
   */
  async create(c: CreateOptions): Promise<CreateResult> {
    checkId(c.id);
    if (!path.isAbsolute(c.bundle)) throw invalidArgument(`bundle path must be absolute: ${short(c.bundle)}`);
    if (!path.isAbsolute(c.logPath)) throw invalidArgument(`log path must be absolute: ${short(c.logPath)}`);
    const id = c.id;
    // A leftover from an earlier container of the same id would be read as this one's exit.
    await this.removeRuntimeFiles(id);
    await fsp.mkdir(this.paths.persistDir(id), { recursive: true, mode: 0o700 });
    await fsp.mkdir(path.dirname(c.logPath), { recursive: true });

    const args = conmonCreateArgs({
      runtimePath: this.runc.runtimePath,
      runtimeRoot: this.opts.runtimeRoot,
      paths: this.paths,
      create: c,
      systemdCgroup: this.opts.systemdCgroup,
    });
    const started = Date.now();
    const timeoutMs = c.timeoutMs ?? this.opts.createTimeoutMs ?? DEFAULT_CREATE_TIMEOUT_MS;
    // conmon's monitor is placed in its cgroup while runc create runs (the pid file is there once
    // the spawned process has exited), and always before create answers: a container reported
    // created has its monitor out of berthd's cgroup (see conmon-cgroup.ts)
    let placed: Promise<number | undefined> | undefined;
    const place = async (): Promise<number | undefined> => {
      const pid = await readPidFile(this.paths.conmonPidFile(id));
      if (pid !== undefined) await this.placeConmon(id, c.bundle, pid, c.cgroupsPath);
      return pid;
    };
    // conmon's working dir is where it drops the `oom` file: the persist dir, outside the bundle.
    const res = await spawnConmon(this.opts.conmonPath, args, this.paths.persistDir(id), timeoutMs, () => {
      placed ??= place();
      placed.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    });
    if (!res.ok || !res.pid) {
      // a placement under way records its cgroup first: it must be done for the cleanup to see it
      await placed?.catch(() => undefined);
      await this.cleanupFailedCreate(id);
      const fault = callerFault(res.message ?? '');
      const verb = c.restore ? 'restore' : 'create';
      if (fault) throw invalidArgument(`${verb} container ${short(id)}: ${fault} (${res.message})`);
      throw new BerthError(Status.INTERNAL, `${verb} container ${short(id)}: ${res.message ?? 'failed'}`);
    }
    const conmonPid = await (placed ?? place());
    this.bundles.set(id, c.bundle);
    this.log.debug('container created', { id, pid: res.pid, conmonPid, ms: Date.now() - started });
    return { pid: res.pid, conmonPid: conmonPid ?? 0 };
  }

  async start(id: string): Promise<void> {
    await this.runc.run(['start', checkId(id)]);
  }

  /** Sends a signal to the container's init (or, with all, to every process in its cgroup). */
  async kill(id: string, signal: string | number, all = false): Promise<void> {
    let sig: string;
    try {
      sig = normalizeSignal(signal);
    } catch (err) {
      throw invalidArgument(errMessage(err));
    }
    await this.runc.run(['kill', ...(all ? ['--all'] : []), checkId(id), sig]);
  }

  /**
   * Stops a container: `signal`, then SIGKILL once `timeoutSec` has passed, and waits for conmon to
   * record the exit. A container already stopped just returns its exit.
   */
  async stop(id: string, signal: string | number, timeoutSec: number): Promise<ExitInfo> {
    checkId(id);
    const done = await this.exitInfoOrLost(id);
    if (done) return done;
    if (timeoutSec > 0) {
      if (await this.signalIfRunning(id, signal)) {
        const info = await this.waitExitFor(id, timeoutSec * 1000);
        if (info) return info;
        this.log.info('container ignored stop signal; killing', { id, signal, timeoutSec });
      }
    }
    await this.signalIfRunning(id, 'SIGKILL');
    const info = await this.waitExitFor(id, KILL_WAIT_MS);
    if (!info)
      throw new BerthError(Status.DEADLINE_EXCEEDED, `container ${short(id)} did not exit after SIGKILL`);
    return info;
  }

  /** `runc state`; undefined when runc does not know the container. */
  async state(id: string): Promise<RuncState | undefined> {
    try {
      const st = JSON.parse((await this.runc.run(['state', checkId(id)])).toString('utf8')) as RuncState;
      if (st.bundle) this.bundles.set(id, st.bundle);
      return st;
    } catch (err) {
      if (isRuncNotFound(err)) return undefined;
      throw err;
    }
  }

  async list(): Promise<RuncState[]> {
    const out = (await this.runc.run(['list', '--format', 'json'])).toString('utf8').trim();
    const list = (out ? JSON.parse(out) : null) as RuncState[] | null;
    return list ?? [];
  }

  /**
   * Removes the container from runc (force also kills a running one) and Berth's runtime files for
   * it (exit file, pid files, persist dir, attach link). Read exitInfo before calling this.
   * Idempotent: an unknown container is success.
   */
  async delete(id: string, force = false): Promise<void> {
    checkId(id);
    try {
      await this.runc.run(['delete', ...(force ? ['--force'] : []), id]);
    } catch (err) {
      if (!isRuncNotFound(err)) throw err;
    }
    // conmon writes the exit file after the container dies; let it finish so nothing reappears.
    await this.waitConmonGone(id, CONMON_EXIT_WAIT_MS);
    await this.removeRuntimeFiles(id);
    this.bundles.delete(id);
    await this.execHelper?.forget(id);
  }

  /** The exit recorded by conmon; undefined while the container has not exited (or was never created). */
  async exitInfo(id: string): Promise<ExitInfo | undefined> {
    checkId(id);
    const file = this.paths.exitFile(id);
    let text: string;
    let mtime: Date;
    try {
      const fh = await fsp.open(file, 'r');
      try {
        text = await fh.readFile('utf8');
        mtime = (await fh.stat()).mtime;
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const code = parseExitFile(text);
    if (code === undefined) {
      this.log.warn('unreadable exit file', { id, content: short(text) });
      return { exitCode: UNKNOWN_EXIT_CODE, finishedAt: mtime, oomKilled: false, unknown: true };
    }
    return { exitCode: code, finishedAt: mtime, oomKilled: await exists(this.paths.oomFile(id)) };
  }

  /** Resolves with the exit once conmon records it (or once conmon is found dead without one). */
  async waitExit(id: string, signal?: AbortSignal): Promise<ExitInfo> {
    checkId(id);
    for (;;) {
      const info = await this.exitInfoOrLost(id);
      if (info) return info;
      await this.exits.wait(id, signal);
    }
  }

  /** Pid of the conmon monitor, if it is still alive. */
  async conmonPid(id: string): Promise<number | undefined> {
    const pid = await readPidFile(this.paths.conmonPidFile(checkId(id)));
    return pid !== undefined && (await isConmon(pid)) ? pid : undefined;
  }

  /** How many conmon monitors of this runtime are alive (one per container not yet deleted). */
  async liveConmons(): Promise<number> {
    let names: string[];
    try {
      names = await fsp.readdir(this.paths.pidsDir);
    } catch {
      return 0;
    }
    const ids = names.filter((n) => n.endsWith('.conmon')).map((n) => n.slice(0, -'.conmon'.length));
    const alive = await Promise.all(ids.filter(isValidRuntimeId).map((id) => this.conmonPid(id)));
    return alive.filter((p) => p !== undefined).length;
  }

  /** Runs a command in the running container and collects its output (bounded). */
  async execSync(id: string, cmd: string[], opts: ExecSyncOptions = {}): Promise<ExecSyncResult> {
    checkId(id);
    if (cmd.length === 0 || !cmd[0]) throw invalidArgument('exec command must not be empty');
    const helperArgs =
      this.execHelper && opts.container
        ? await this.execHelper.args(id, opts.container, { env: opts.env, cwd: opts.cwd })
        : undefined;
    this.execCounts[helperArgs ? 'native' : 'runtime']++;
    return execSyncRunc({
      helper:
        helperArgs && this.execHelper ? { path: this.execHelper.helperPath, args: helperArgs } : undefined,
      runc: this.runc,
      id,
      cmd,
      opts,
      workDir: this.paths.execDir,
      events: this.execEvents,
      log: this.log,
      startTimeoutMs: this.opts.execStartTimeoutMs,
    });
  }

  /** How many ExecSyncs ran through berth-exec and through the runtime binary since start. */
  execStats(): { native: number; runtime: number } {
    return { ...this.execCounts };
  }

  /** `runc update` with OCI linux.resources. Given as a file: crun does not read `-` as stdin. */
  async update(id: string, resources: LinuxResources): Promise<void> {
    checkId(id);
    const file = path.join(this.paths.execDir, `update-${id.slice(0, 32)}-${uniqueSuffix()}.json`);
    await fsp.writeFile(file, JSON.stringify(resources), { mode: 0o600 });
    try {
      await this.runc.run(['update', '--resources', file, id]);
    } finally {
      await fsp.rm(file, { force: true });
    }
  }

  /** Optional features of the runtime binary (`features`), asked once. */
  features(): Promise<RuntimeBinaryFeatures> {
    this.featuresCache ??= detectFeatures(this.opts.runtimePath);
    return this.featuresCache;
  }

  /**
   * Checkpoints the container with CRIU into `imagePath` and leaves it running. Throws
   * FAILED_PRECONDITION when this runtime or CRIU cannot checkpoint here (saying what is missing).
   */
  async checkpoint(id: string, imagePath: string, workPath: string, timeoutMs?: number): Promise<void> {
    checkId(id);
    const missing = await this.checkpointProblem();
    if (missing) throw new BerthError(Status.FAILED_PRECONDITION, `cannot checkpoint: ${missing}`);
    await this.runc.run(
      [
        'checkpoint',
        '--image-path',
        imagePath,
        '--work-path',
        workPath,
        '--leave-running',
        '--file-locks',
        id,
      ],
      { timeoutMs },
    );
  }

  /** Why this runtime cannot checkpoint or restore here (no checkpoint command, `criu check`
   * fails), or undefined when it can. Both answers are asked once and kept. */
  checkpointProblem(): Promise<string | undefined> {
    this.checkpointProblemCache ??= (async () =>
      (await checkpointUnsupported(this.opts.runtimePath)) ?? (await criuUnavailable()))();
    return this.checkpointProblemCache;
  }

  private checkpointProblemCache?: Promise<string | undefined>;

  async pause(id: string): Promise<void> {
    await this.runc.run(['pause', checkId(id)]);
  }

  async resume(id: string): Promise<void> {
    await this.runc.run(['resume', checkId(id)]);
  }

  /**
   * Asks conmon to reopen the container's log file (after kubelet rotated it). With `logPath`,
   * waits until conmon has created the new file there.
   */
  async reopenLog(id: string, logPath?: string, timeoutMs = 5000): Promise<void> {
    const fifo = await this.ctlFifoPath(id);
    let fh;
    try {
      // Non-blocking: with conmon gone there is no reader and open fails (ENXIO) instead of hanging.
      fh = await fsp.open(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENXIO' || code === 'ENOENT')
        throw new BerthError(
          Status.FAILED_PRECONDITION,
          `container ${short(id)} has no running monitor (${code})`,
        );
      throw err;
    }
    try {
      await fh.write('2 0 0\n');
    } finally {
      await fh.close();
    }
    if (!logPath) return;
    const deadline = Date.now() + timeoutMs;
    while (!(await exists(logPath))) {
      if (Date.now() > deadline)
        throw new BerthError(Status.DEADLINE_EXCEEDED, `conmon did not reopen the log of ${short(id)}`);
      await sleep(10);
    }
  }

  // --- internals ---

  private async bundleOf(id: string): Promise<string> {
    const known = this.bundles.get(checkId(id));
    if (known) return known;
    const st = await this.state(id);
    if (!st) throw notFound(`container ${short(id)} is not known to the runtime`);
    return st.bundle;
  }

  /** Exit info, or a stand-in (code 255, unknown) when the container is not running and no conmon
   * is left to record its exit, so that waits end. */
  private async exitInfoOrLost(id: string): Promise<ExitInfo | undefined> {
    const info = await this.exitInfo(id);
    if (info) return info;
    const pid = await readPidFile(this.paths.conmonPidFile(id));
    if (pid !== undefined && (await isConmon(pid))) return undefined;
    // conmon may have written the file between the two checks.
    const again = await this.exitInfo(id);
    if (again) return again;
    // No monitor will ever write the file. While runc still has the container alive, it has not
    // exited (keep waiting: a kill will end it); once it is stopped or gone, report an unknown exit.
    const st = await this.state(id).catch(() => undefined);
    if (st && st.status !== 'stopped') return undefined;
    this.log.warn('container ended without an exit file (no conmon)', { id });
    return { exitCode: UNKNOWN_EXIT_CODE, finishedAt: new Date(), oomKilled: false, unknown: true };
  }

  private async waitExitFor(id: string, ms: number): Promise<ExitInfo | undefined> {
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(new Error('timeout')), ms);
    try {
      return await this.waitExit(id, ac.signal);
    } catch (err) {
      if (ac.signal.aborted) return undefined;
      throw err;
    } finally {
      clearTimeout(t);
    }
  }

  /** Signals the container; false when it is not running any more (or unknown to runc). */
  private async signalIfRunning(id: string, signal: string | number): Promise<boolean> {
    try {
      await this.kill(id, signal);
      return true;
    } catch (err) {
      if (isRuncNotRunning(err) || isRuncNotFound(err)) return false;
      throw err;
    }
  }

  private async waitConmonGone(id: string, ms: number): Promise<void> {
    const pid = await readPidFile(this.paths.conmonPidFile(id));
    if (pid === undefined) return;
    const deadline = Date.now() + ms;
    while (await isConmon(pid)) {
      if (Date.now() > deadline) {
        this.log.warn('conmon still running after delete; killing it', { id, pid });
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
        return;
      }
      await sleep(10);
    }
  }

  private async cleanupFailedCreate(id: string): Promise<void> {
    const pid = await readPidFile(this.paths.conmonPidFile(id));
    if (pid !== undefined && (await isConmon(pid))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    try {
      await this.runc.run(['delete', '--force', id]);
    } catch (err) {
      if (!isRuncNotFound(err)) this.log.warn('cleanup after failed create', { id, error: errMessage(err) });
    }
    await this.removeRuntimeFiles(id);
  }

  /**
   * Moves conmon out of berthd's cgroup (see conmon-cgroup.ts). A failure leaves the container
   * working with its monitor charged to berthd: logged, not fatal (as CRI-O).
   */
  private async placeConmon(id: string, bundle: string, pid: number, known?: string): Promise<void> {
    const cc = this.opts.conmonCgroup;
    if (!cc) return;
    try {
      const cgroupsPath =
        known ??
        (
          JSON.parse(await fsp.readFile(path.join(bundle, 'config.json'), 'utf8')) as {
            linux?: { cgroupsPath?: string };
          }
        ).linux?.cgroupsPath ??
        '';
      if (cc.driver === 'systemd') {
        await moveToScope(pid, id, cc.target === 'pod' ? sliceOf(cgroupsPath) : cc.target);
        return;
      }
      if (!cgroupsPath.startsWith('/')) return;
      const rel = conmonCgroupfsPath(cc.target, cgroupsPath, id);
      // recorded first, so a crash right after the move still has the cgroup removed on delete
      await fsp.writeFile(this.conmonCgroupFile(id), rel);
      this.hierarchies ??= cgroupHierarchies(await fsp.readFile('/proc/self/mountinfo', 'utf8'));
      await moveToCgroupfs(pid, rel, this.hierarchies);
    } catch (err) {
      this.log.warn('conmon stays in berthd cgroup', { id, conmonPid: pid, error: errMessage(err) });
    }
  }

  private conmonCgroupFile(id: string): string {
    return path.join(this.paths.persistDir(id), 'conmon-cgroup');
  }

  /** Removes conmon's own cgroup (cgroupfs driver), once conmon is gone. */
  private async removeConmonCgroup(id: string): Promise<void> {
    let rel: string;
    try {
      rel = (await fsp.readFile(this.conmonCgroupFile(id), 'utf8')).trim();
    } catch {
      return;
    }
    if (!rel.startsWith('/')) return;
    this.hierarchies ??= cgroupHierarchies(await fsp.readFile('/proc/self/mountinfo', 'utf8'));
    await removeCgroupfs(rel, this.hierarchies);
  }

  private async removeRuntimeFiles(id: string): Promise<void> {
    await this.removeConmonCgroup(id);
    await Promise.all([
      fsp.rm(this.paths.exitFile(id), { force: true }),
      fsp.rm(this.paths.containerPidFile(id), { force: true }),
      fsp.rm(this.paths.conmonPidFile(id), { force: true }),
      fsp.rm(this.paths.persistDir(id), { force: true, recursive: true }),
      fsp.rm(this.paths.socketLink(id), { force: true }),
    ]);
  }
}

function checkId(id: string): string {
  if (!isValidRuntimeId(id)) throw invalidArgument(`invalid container id ${short(id)}`);
  return id;
}

/** Whether pid is alive and is a conmon (guards against pid reuse after a reboot or long uptime). */
async function isConmon(pid: number): Promise<boolean> {
  try {
    const comm = (await fsp.readFile(`/proc/${pid}/comm`, 'utf8')).trim();
    if (comm !== 'conmon') return false;
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
    // A zombie conmon has finished its work.
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
