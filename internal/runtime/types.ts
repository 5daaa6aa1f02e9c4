// Shapes shared by the runtime driver and its callers. OCI types cover only the fields Berth reads
// or writes; everything else in a spec passes through untouched.
import type { Logger } from '../log';
import type { ExecContainer } from './exec-helper';

export interface RuntimeOptions {
  /** conmon binary, e.g. /usr/bin/conmon. */
  conmonPath: string;
  /** OCI runtime binary, e.g. /usr/sbin/runc. */
  runtimePath: string;
  /** runc's --root: where it keeps container state. */
  runtimeRoot: string;
  /** Berth's own runtime files: exits/, persist/<id>/, pids/, sockets/, exec/. Keep it short: the
   * attach socket path (sockets/<id>/attach) must fit in a unix socket address (108 bytes). */
  stateDir: string;
  log: Logger;
  /** Where conmon is moved once started (see conmon-cgroup.ts); absent: it stays in berthd's cgroup. */
  conmonCgroup?: { driver: 'cgroupfs' | 'systemd'; target: string };
  /** `--systemd-cgroup` for the runtime (runc/crun) and conmon: the systemd cgroup driver. */
  systemdCgroup?: boolean;
  /** How long `create` waits for conmon to report runc create's result (default 60 s). */
  createTimeoutMs?: number;
  /** Period of the exit watcher's safety sweep (default 30 s); exits normally come as events. */
  exitSweepMs?: number;
  /** How long runc may take to start an ExecSync command (default 10 s). */
  execStartTimeoutMs?: number;
  /**
   * berth-exec for ExecSync (exec-helper.ts) instead of `runc exec`, where the container's spec
   * allows it; undefined: always the runtime binary.
   */
  execHelperPath?: string;
}

export interface CreateOptions {
  id: string;
  /** Bundle dir holding config.json (and usually rootfs). conmon makes `ctl`/`winsz` FIFOs here and
   * the attach socket `attach`, so it must not hold a directory of that name. */
  bundle: string;
  /** CRI log file conmon writes (k8s-file format). */
  logPath: string;
  tty?: boolean;
  stdin?: boolean;
  /** Close the container's stdin after the first attach disconnects (CRI stdin_once). */
  stdinOnce?: boolean;
  /** conmon --log-size-max in bytes; conmon truncates the log when it grows past it. */
  logSizeMax?: number;
  timeoutMs?: number;
  /** the spec's linux.cgroupsPath, when the caller has the spec at hand (else read from the bundle) */
  cgroupsPath?: string;
  /**
   * Restore from CRIU images instead of creating: conmon --restore runs `runc restore --detach`
   * (the process is running when create resolves), with these extra runc restore options.
   */
  restore?: { imagePath: string; runtimeOpts: readonly string[] };
}

export interface CreateResult {
  /** Host pid of the container's init process. */
  pid: number;
  /** Pid of the conmon monitor that outlives us. */
  conmonPid: number;
}

export type RuncStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** `runc state` / `runc list --format json` output. */
export interface RuncState {
  ociVersion?: string;
  id: string;
  pid: number;
  status: RuncStatus;
  bundle: string;
  rootfs?: string;
  created: string;
  owner?: string;
  annotations?: Record<string, string>;
}

export interface ExitInfo {
  /** The container's exit code; 128+N when killed by signal N (conmon's convention, and CRI's). */
  exitCode: number;
  finishedAt: Date;
  oomKilled: boolean;
  /** True when conmon died without recording the exit: the code is a stand-in (255). */
  unknown?: boolean;
}

/** OCI linux.resources (the subset `runc update` understands). */
export interface LinuxResources {
  memory?: { limit?: number; reservation?: number; swap?: number; kernel?: number; swappiness?: number };
  cpu?: {
    shares?: number;
    quota?: number;
    period?: number;
    realtimeRuntime?: number;
    realtimePeriod?: number;
    cpus?: string;
    mems?: string;
  };
  pids?: { limit: number };
  blockIO?: { weight?: number };
  hugepageLimits?: { pageSize: string; limit: number }[];
  unified?: Record<string, string>;
}

/** OCI process (as in config.json); only what exec-sync touches is typed. */
export interface OciProcess {
  terminal?: boolean;
  user?: { uid: number; gid: number; umask?: number; additionalGids?: number[] };
  args?: string[];
  env?: string[];
  cwd: string;
  [key: string]: unknown;
}

export interface ExecSyncOptions {
  /** 0 or absent: no timeout (CRI semantics). */
  timeoutSec?: number;
  /** Cap for each of stdout and stderr; beyond it output is dropped (still drained). Default 16 MiB. */
  maxOutputBytes?: number;
  /** Added to the container's env (as `runc exec --env`: a name given here wins). */
  env?: string[];
  cwd?: string;
  /** Used by execProcessSpec for streaming exec; execSync always runs without a terminal. */
  tty?: boolean;
  /** The running container (init pid, spec), which lets execSync use berth-exec. */
  container?: ExecContainer;
}

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  /** Exit code (128+N for signal N); -1 when timed out. */
  exitCode: number;
  timedOut: boolean;
  /** Bytes dropped because of the cap, per stream. */
  stdoutTruncated: number;
  stderrTruncated: number;
}
