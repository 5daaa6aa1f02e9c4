// Steady-load benchmark shaped like kubelet on a busy node: N pods, then kubelet's periodic CRI
// traffic against them for D seconds, all loops running concurrently, with kubelet's periods and
// timeouts. It answers "does the runtime keep up": probe timeouts, latency tails, and what the
// daemon costs in CPU and memory while doing it.
//
// Run (needs root):
//   npm run bench -- load                                  Berth: a fresh berthd from the test harness
//   BENCH_TARGET=containerd npm run bench -- load          Debian's containerd 1.6 (test/lab/containerd.ts)
//   BENCH_COMPARE=1 npm run bench -- load                  Berth, then containerd, side by side with ratios
//   BENCH_ENDPOINT=unix:///run/x.sock npm run bench -- load    an already running CRI endpoint
// Settings (env, or flags when running node dist/test/bench/load.js directly):
//   BENCH_PODS / --pods N (30), BENCH_DURATION / --duration D seconds (60),
//   BENCH_JSON / --json FILE (all figures as JSON), BENCH_IDLE / --idle S (20: seconds the pods
//   sit with no calls before the load, to measure the idle daemon's own CPU; 0 skips it), BENCH_DAEMON_PID (BENCH_ENDPOINT only: the
//   daemon's pid when it cannot be found from the socket), BENCH_IMAGE (BENCH_ENDPOINT only: a
//   busybox image the endpoint already has, instead of pulling from a lab registry).
//
// Pods (a repeating mix of six, so N=30 is 5 of each; images from a lab registry, test/lab):
//   web            busybox `httpd -f -p 8080` (stands in for nginx: there is no nginx image offline)
//   sleeper        busybox `sleep` (exits promptly on SIGTERM)
//   web-hostport   web with a hostPort mapping 8080 -> 3xxxx (GET from 127.0.0.1 before the load,
//                  and again after it for the ports that did not answer)
//   sleeper        again
//   web-init       web with an init container (`sleep 1`, run to completion before the app starts)
//   sleeper-init   sleeper with an init container
// Every pod gets kubelet's namespace options (pid CONTAINER: no shared PID namespace, so Berth runs
// it without an infra container, as CRI-O does), kubelet's labels and its own cgroup parent
// (/berthload-<pid>-<target>/pod<uid>, as kubelet's cgroupfs driver gives each pod one; containerd 1.6's ListPodSandboxStats needs it), left
// out only for a BENCH_ENDPOINT whose RuntimeConfig reports the systemd driver. The tree is removed
// at the end.
//
// Before the window (after the idle time), each call the loops make is made once, untimed (one pod
// for the per-pod calls): a kubelet has been calling all along, so the first-call costs of this
// client (protobufjs code generation, ~20-40 ms of its loop) belong to no loop's figures.
//
// Loops during the window (kubelet's defaults):
//   relist       every 1 s after the previous one ended (PLEG): ListPodSandbox + ListContainers,
//                timed together
//   exec probe   per pod every 2 s on a ticker (a probe that overruns its period is followed at
//                once by one more, as Go's ticker buffers one tick), starts staggered over the
//                period: ExecSync ['sh','-c','exit 0'] with timeout 1 s on the app container. The
//                gRPC deadline is the probe timeout plus kubelet's runtime request timeout (2 min),
//                as kubelet's remote runtime client sets it (pkg/kubelet/cri/remote ExecSync): the
//                runtime, not the client, is expected to enforce the 1 s. exit 0 is ok; a
//                DEADLINE_EXCEEDED answer is a timeout; anything else (other codes, exit != 0) an
//                error. Per pod the longest run of consecutive failures is kept: 3 in a row is
//                kubelet's default failureThreshold (a liveness probe would restart the container).
//   GetPodStatus per pod every 10 s, staggered: PodSandboxStatus + ContainerStatus of each of the
//                pod's containers (init container included), timed together
//   stats        every 10 s: ListContainerStats + ListPodSandboxStats, timed together (each is
//                also kept alone); a runtime that answers UNIMPLEMENTED to ListPodSandboxStats is
//                timed on ListContainerStats alone and the table says so
//   ImageFsInfo  every 10 s; Status every 5 s (kubelet's runtime health check, verbose=false)
//   event loop   every 10 s: Status verbose=true, reading `info.eventLoop` (Berth: the daemon's
//                event-loop delay over the last 10 s; absent elsewhere: "n/a"). The same verbose
//                call is made against every runtime, so the load is the same.
// Every other call has kubelet's 2 min runtime request timeout as its deadline.
//
// What is counted (CPU as % of one core over the window, from /proc/<pid>/stat, 100 ticks/s):
//   own        utime+stime of the daemon process (all its threads)
//   children   the daemon's cutime+cstime delta (children it reaped in the window: runc exec and
//              the probe's sh for Berth, CNI plugins) plus utime+stime+cutime+cstime of its
//              per-container monitors: for Berth the conmon processes (cmdline names the daemon's
//              state dir, or with BENCH_ENDPOINT one of the benchmark's container ids), for
//              containerd the containerd-shim-runc-v2 processes whose -address is its socket (the
//              shim reaps the runc exec and the probe's process). Monitors that appear during the
//              window count from zero; ones that vanish are lost (the table counts both).
//   per probe  the daemon's own + children CPU divided by the exec probes made (the probes are most
//              of the work, and a slower runtime makes fewer of them: a probe that overruns its
//              period delays the next, as in kubelet)
//   RSS        VmRSS of the daemon, and the sum over its monitors, at the end of the window
//   host       all CPUs busy (from /proc/stat) as % of one core (2 cores = 200 %)
//   client     this benchmark's own CPU (all its threads) and its main thread's event-loop delay
// The latencies are wall time seen by this client. The exec probes and the stats loop each run in
// a worker thread with its own gRPC channel, the other loops in the main thread (see LoopPart):
// kubelet's loops are goroutines spread over every core, and a light call timed in a thread that
// also decodes 15 probe answers a second and the stats lists waited behind them (Status and
// ImageFsInfo p99 12-13 ms with a client event-loop p99 of 12.5 ms; 5-6 ms once split).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { call, connect, type CriClients } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { removeCgroupTree, shimPidsFor, startContainerd } from '../lab/containerd';
import { KUBELET_NAMESPACES, startHarness } from '../lab/harness';
import { busyboxLayer, pushImage, pushPause } from '../lab/images';
import { procStat, procStatusKb, TICKS } from '../lab/proc';
import { startRegistry, type LabRegistry } from '../lab/registry';
import { median, pct } from '../lab/percentiles';

// ---------------------------------------------------------------------------------------------
// settings

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function positiveInt(v: string | undefined, def: number, what: string): number {
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${what} must be a positive integer, got ${v}`);
  return n;
}

const PODS = positiveInt(flag('pods') ?? process.env.BENCH_PODS, 30, 'BENCH_PODS/--pods');
const DURATION_S = positiveInt(
  flag('duration') ?? process.env.BENCH_DURATION,
  60,
  'BENCH_DURATION/--duration',
);
const JSON_OUT = flag('json') ?? process.env.BENCH_JSON;
/** Seconds the pods sit idle (no calls at all) before the load, to measure the idle daemon's CPU. */
const IDLE_S = Number(flag('idle') ?? process.env.BENCH_IDLE ?? 20);
const ENDPOINT = process.env.BENCH_ENDPOINT;
const TARGET = process.env.BENCH_TARGET ?? 'berth';
const COMPARE = process.env.BENCH_COMPARE === '1';

/** kubelet's --runtime-request-timeout default */
const RUNTIME_REQUEST_TIMEOUT_MS = 120_000;
const PROBE_PERIOD_MS = 2000;
const PROBE_TIMEOUT_S = 1;
const FAILURE_THRESHOLD = 3;
const RELIST_PERIOD_MS = 1000;
const POD_STATUS_PERIOD_MS = 10_000;
const STATS_PERIOD_MS = 10_000;
const IMAGEFS_PERIOD_MS = 10_000;
const STATUS_PERIOD_MS = 5000;
const EVENT_LOOP_PERIOD_MS = 10_000;
const SETUP_PARALLEL = 4;

const KINDS = ['web', 'sleeper', 'web-hostport', 'sleeper', 'web-init', 'sleeper-init'] as const;
type Kind = (typeof KINDS)[number];

const WEB_CMD = [
  'sh',
  '-c',
  'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www',
];
const SLEEP_CMD = ['sh', '-c', 'trap "exit 0" TERM; sleep 86400 & wait'];
const INIT_CMD = ['sh', '-c', 'echo init; sleep 1'];
const PROBE_CMD = ['sh', '-c', 'exit 0'];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.now();

function log(msg: string): void {
  process.stderr.write(`[load] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// /proc

function cmdline(pid: string | number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Processes whose argv[0] is `bin` (by basename) and whose argv satisfies `match`. */
function findProcs(bin: string, match: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = cmdline(e);
    if (argv.length > 0 && path.basename(argv[0]) === bin && match(argv)) out.push(Number(e));
  }
  return out;
}

/** Total and idle jiffies of all CPUs. */
function hostCpu(): { total: number; idle: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is already in user)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, idle: v[3] + v[4] };
}

/** The pid listening on a unix socket path: /proc/net/unix gives its inode, /proc/*\/fd the owner. */
function pidListeningOn(socketPath: string): number | undefined {
  const inodes = new Set<string>();
  for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[7] === socketPath && f[5] === '01') inodes.add(f[6]);
  }
  if (inodes.size === 0) return undefined;
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${e}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${e}/fd/${fd}`));
        if (m && inodes.has(m[1])) return Number(e);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// stopping early (SIGINT/SIGTERM, or the end of the window)

class Stopper {
  stopped = false;
  private waiters = new Set<() => void>();
  /** resolves after ms, or at once when stop() is called */
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }
  stop(): void {
    this.stopped = true;
    for (const w of [...this.waiters]) w();
  }
}

let interrupted = false;
const interruptStopper = new Set<Stopper>();

// ---------------------------------------------------------------------------------------------
// figures

class Metric {
  ms: number[] = [];
  ok = 0;
  errors = new Map<string, number>();
  samples: string[] = [];
  record(ms: number, err?: unknown): void {
    this.ms.push(ms);
    if (err === undefined) {
      this.ok++;
      return;
    }
    const e = err as Partial<grpc.ServiceError>;
    const code = typeof e.code === 'number' ? grpc.status[e.code] : 'ERROR';
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    if (this.samples.length < 3)
      this.samples.push(`${code}: ${String(e.details ?? e.message ?? err).slice(0, 160)}`);
  }
  errorCount(): number {
    return [...this.errors.values()].reduce((a, b) => a + b, 0);
  }
  summary(): LatencySummary {
    return {
      n: this.ms.length,
      errors: this.errorCount(),
      error_codes: Object.fromEntries(this.errors),
      error_samples: this.samples,
      p50_ms: this.ms.length ? pct(this.ms, 50) : null,
      p99_ms: this.ms.length ? pct(this.ms, 99) : null,
      max_ms: this.ms.length ? Math.max(...this.ms) : null,
    };
  }
}

interface LatencySummary {
  n: number;
  errors: number;
  error_codes: Record<string, number>;
  error_samples: string[];
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

interface EventLoopSample {
  window_s?: number;
  delay_ms?: { p50?: number; p90?: number; p99?: number; max?: number };
  utilization?: number;
  total?: { delay_ms?: { p50?: number; p90?: number; p99?: number; max?: number }; utilization?: number };
}

interface Result {
  target: string;
  runtime: string;
  endpoint: string;
  pods_requested: number;
  pods_running: number;
  containers: number;
  setup_s: number;
  setup_errors: string[];
  hostport: { pods: number; answered: number; answered_after: number; errors: string[] };
  window_s: number;
  /** the daemon's own CPU (% of a core) while the pods sat idle for idle_s, before the load */
  idle_s: number;
  idle_own_pct: number | null;
  probes: {
    total: number;
    ok: number;
    ok_late: number;
    timed_out: number;
    other_errors: number;
    error_samples: string[];
    pods_with_3_consecutive_failures: number;
    longest_failure_run: number;
  };
  latency: Record<string, LatencySummary>;
  pod_stats_unimplemented: boolean;
  cpu: {
    daemon_pid: number | null;
    own_pct: number | null;
    children_pct: number | null;
    total_pct: number | null;
    host_busy_pct: number;
    monitors: number;
    monitors_new: number;
    monitors_gone: number;
  };
  rss: { daemon_mb: number | null; monitors_mb: number | null };
  event_loop: {
    samples: EventLoopSample[];
    p99_max_ms: number | null;
    p99_median_ms: number | null;
    utilization_mean: number | null;
  } | null;
  client: { cpu_pct: number; event_loop_p99_ms: number; event_loop_max_ms: number };
}

// ---------------------------------------------------------------------------------------------
// targets

interface Target {
  name: string;
  clients: CriClients;
  endpoint: string;
  busybox: string;
  logDir: string;
  daemonPid?: number;
  /** pids of the daemon's per-container monitors (conmon or shims) right now */
  monitors(): number[];
  hostPortBase: number;
  /** cgroup parent root for the pods, when the benchmark may create and remove it */
  cgroupRoot?: string;
  cleanup(): Promise<void>;
}

async function pushLabImages(reg: LabRegistry): Promise<string> {
  await pushPause(reg);
  // the same busybox (with the lab users) that the harness gives Berth
  return (await pushImage(reg, 'library/busybox', 'latest', { layers: [busyboxLayer({ users: true })] }))
    .reference;
}

async function startBerthTarget(): Promise<Target> {
  const h = await startHarness({
    bridge: 'berthld0',
    subnet: '10.246.0.0/24',
    prefix: 'load',
    config: { log_level: 'warn' },
  });
  const state = h.d.state;
  return {
    name: 'berth',
    clients: h.d.clients,
    endpoint: h.d.endpoint,
    busybox: h.busybox,
    logDir: h.logDir,
    daemonPid: h.d.proc.pid,
    monitors: () => findProcs('conmon', (argv) => argv.some((a) => a.startsWith(state))),
    hostPortBase: 31000,
    cgroupRoot: `/berthload-${process.pid}-berth`,
    cleanup: () => h.cleanup(),
  };
}

async function startContainerdTarget(): Promise<Target> {
  const reg = await startRegistry();
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-load-logs-'));
  try {
    const busybox = await pushLabImages(reg);
    const c = await startContainerd({
      sandboxImage: `${reg.host}/pause:3.10`,
      insecureRegistries: [reg.host],
      bridge: 'berthld1',
      subnet: '10.245.0.0/24',
    });
    try {
      await call(c.clients.image, 'PullImage', { image: { image: busybox } });
    } catch (err) {
      await c.stop();
      throw err;
    }
    return {
      name: 'containerd',
      clients: c.clients,
      endpoint: c.endpoint,
      busybox,
      logDir,
      daemonPid: c.pid,
      monitors: () => c.shimPids(),
      hostPortBase: 32000,
      cgroupRoot: `/berthload-${process.pid}-containerd`,
      async cleanup() {
        try {
          await c.stop();
        } finally {
          await reg.stop();
          fs.rmSync(logDir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    await reg.stop();
    fs.rmSync(logDir, { recursive: true, force: true });
    throw err;
  }
}

async function startEndpointTarget(endpoint: string, ourIds: Set<string>): Promise<Target> {
  const clients = connect(endpoint);
  const socketPath = endpoint.replace(/^unix:(\/\/)?/, '');
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-load-logs-'));
  let reg: LabRegistry | undefined;
  try {
    const v = await call(clients.runtime, 'Version', { version: 'v1' }, 10_000);
    let busybox = process.env.BENCH_IMAGE;
    if (!busybox) {
      reg = await startRegistry();
      busybox = await pushLabImages(reg);
    }
    await call(clients.image, 'PullImage', { image: { image: busybox } });
    const daemonPid = process.env.BENCH_DAEMON_PID
      ? Number(process.env.BENCH_DAEMON_PID)
      : pidListeningOn(socketPath);
    if (daemonPid === undefined) log(`no process found listening on ${socketPath}: CPU and RSS are n/a`);
    const isContainerd = v.runtime_name === 'containerd';
    // kubelet gives each pod a cgroup parent; with the systemd driver they would have to be slices
    const rc = await call(clients.runtime, 'RuntimeConfig', {}, 10_000).catch(() => undefined);
    const systemd = rc?.linux?.cgroup_driver === 'SYSTEMD';
    const registry = reg;
    return {
      name: v.runtime_name || 'endpoint',
      clients,
      endpoint,
      busybox,
      logDir,
      daemonPid,
      monitors: isContainerd
        ? () => shimPidsFor(socketPath)
        : () => findProcs('conmon', (argv) => argv.some((a) => ourIds.has(a))),
      hostPortBase: 33000,
      cgroupRoot: systemd ? undefined : `/berthload-${process.pid}-endpoint`,
      async cleanup() {
        clients.close();
        await registry?.stop();
        fs.rmSync(logDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    clients.close();
    await reg?.stop();
    fs.rmSync(logDir, { recursive: true, force: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// pods

interface Pod {
  index: number;
  kind: Kind;
  config: PodSandboxConfig;
  id: string;
  /** init container (exited) first when there is one, app container last */
  containers: string[];
  app: string;
  hostPort?: number;
}

function podConfig(t: Target, i: number, kind: Kind): PodSandboxConfig {
  const name = `load-${i}-${kind}`;
  const uid = `uid-load-${process.pid}-${t.name}-${i}`;
  const hostPort = kind === 'web-hostport' ? t.hostPortBase + i : undefined;
  return {
    metadata: { name, namespace: 'bench', uid, attempt: 0 },
    hostname: name,
    log_directory: path.join(t.logDir, name),
    labels: {
      'io.kubernetes.pod.name': name,
      'io.kubernetes.pod.namespace': 'bench',
      'io.kubernetes.pod.uid': uid,
    },
    port_mappings: hostPort ? [{ protocol: 'TCP', container_port: 8080, host_port: hostPort }] : [],
    linux: {
      ...(t.cgroupRoot ? { cgroup_parent: `${t.cgroupRoot}/pod${uid}` } : {}),
      security_context: { namespace_options: KUBELET_NAMESPACES },
    },
  };
}

function ctrConfig(t: Target, pod: PodSandboxConfig, name: string, command: string[]): ContainerConfig {
  return {
    metadata: { name, attempt: 0 },
    image: { image: t.busybox },
    command,
    log_path: `${name}/0.log`,
    labels: { ...pod.labels, 'io.kubernetes.container.name': name },
    linux: {},
  };
}

async function startContainer(
  t: Target,
  podId: string,
  pod: PodSandboxConfig,
  cfg: ContainerConfig,
): Promise<string> {
  const r = t.clients.runtime;
  const { container_id: id } = await call(
    r,
    'CreateContainer',
    { pod_sandbox_id: podId, config: cfg, sandbox_config: pod },
    RUNTIME_REQUEST_TIMEOUT_MS,
  );
  await call(r, 'StartContainer', { container_id: id }, RUNTIME_REQUEST_TIMEOUT_MS);
  return id;
}

/** What kubelet does for one pod: sandbox, init container to completion, then the app container. */
async function startPod(t: Target, i: number, made: (podId: string) => void): Promise<Pod> {
  const kind = KINDS[i % KINDS.length];
  const config = podConfig(t, i, kind);
  const r = t.clients.runtime;
  const { pod_sandbox_id: id } = await call(r, 'RunPodSandbox', { config }, RUNTIME_REQUEST_TIMEOUT_MS);
  made(id);
  const containers: string[] = [];
  if (kind.endsWith('-init')) {
    const init = await startContainer(t, id, config, ctrConfig(t, config, 'init', INIT_CMD));
    containers.push(init);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = await call(r, 'ContainerStatus', { container_id: init }, RUNTIME_REQUEST_TIMEOUT_MS);
      if (s.status?.state === 'CONTAINER_EXITED') {
        if (s.status.exit_code !== 0)
          throw new Error(`init container of ${config.metadata?.name} exited ${s.status.exit_code}`);
        break;
      }
      if (Date.now() > deadline)
        throw new Error(`init container of ${config.metadata?.name} still ${s.status?.state}`);
      await sleep(200);
    }
  }
  const app = await startContainer(
    t,
    id,
    config,
    ctrConfig(t, config, 'app', kind.startsWith('web') ? WEB_CMD : SLEEP_CMD),
  );
  containers.push(app);
  return { index: i, kind, config, id, containers, app, hostPort: config.port_mappings?.[0]?.host_port };
}

/**
 * GET http://127.0.0.1:<hostPort>/index.html answers "hello", retried for `ms` while httpd starts;
 * undefined when it does, else the last error.
 */
async function hostPortError(port: number, ms: number): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  let last = 'no attempt';
  while (!interrupted) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (body.includes('hello')) return undefined;
      last = `HTTP ${res.status} ${body.slice(0, 80)}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      last = e.cause?.code ?? e.cause?.message ?? e.message;
    }
    if (Date.now() > deadline) break;
    await sleep(250);
  }
  return `:${port} ${last}`;
}

// ---------------------------------------------------------------------------------------------
// the load

async function timed(m: Metric, fn: () => Promise<unknown>): Promise<unknown> {
  const t0 = now();
  try {
    const r = await fn();
    m.record(now() - t0);
    return r;
  } catch (err) {
    m.record(now() - t0, err);
    return undefined;
  }
}

interface Loops {
  relist: Metric;
  podStatus: Metric;
  probe: Metric;
  stats: Metric;
  listContainerStats: Metric;
  listPodSandboxStats: Metric;
  imageFsInfo: Metric;
  status: Metric;
  statusVerbose: Metric;
  probeOk: number;
  probeLate: number;
  probeTimedOut: number;
  probeOther: number;
  probeSamples: string[];
  maxRun: Map<string, number>;
  podStatsUnimplemented: boolean;
  eventLoop: EventLoopSample[];
}

/**
 * Runs `body` from `start + offset` until `end`. sliding: the next run starts `period` after the
 * previous one ended (wait.Until). ticker: runs on a grid of `period`; a run that overruns is
 * followed at once by one more run, then the grid again (time.Ticker drops all but one tick).
 */
async function periodic(
  s: Stopper,
  start: number,
  end: number,
  offset: number,
  period: number,
  mode: 'sliding' | 'ticker',
  body: () => Promise<void>,
): Promise<void> {
  const first = start + offset;
  await s.sleep(first - now());
  let tick = 0; // the grid tick last consumed (integer, so float error cannot repeat a tick)
  while (!s.stopped && now() < end) {
    await body();
    if (mode === 'sliding') {
      await s.sleep(Math.min(period, end - now()));
      continue;
    }
    const t = now();
    if (first + (tick + 1) * period <= t) {
      tick = Math.floor((t - first) / period); // the buffered tick: run again at once
    } else {
      tick += 1;
      await s.sleep(first + tick * period - t);
    }
  }
}

/** Each of the loops' calls once (one pod for the per-pod ones), untimed; errors are the window's. */
async function warmUp(t: Target, pods: Pod[]): Promise<void> {
  const r = t.clients.runtime;
  const D = RUNTIME_REQUEST_TIMEOUT_MS;
  const p = pods[0];
  const calls: Promise<unknown>[] = [
    call(r, 'ListPodSandbox', {}, D),
    call(r, 'ListContainers', {}, D),
    call(r, 'ListContainerStats', {}, D),
    call(r, 'ListPodSandboxStats', {}, D),
    call(t.clients.image, 'ImageFsInfo', {}, D),
    call(r, 'Status', { verbose: false }, D),
    call(r, 'Status', { verbose: true }, D),
  ];
  if (p) {
    calls.push(call(r, 'PodSandboxStatus', { pod_sandbox_id: p.id, verbose: false }, D));
    for (const c of p.containers)
      calls.push(call(r, 'ContainerStatus', { container_id: c, verbose: false }, D));
    calls.push(call(r, 'ExecSync', { container_id: p.app, cmd: PROBE_CMD, timeout: PROBE_TIMEOUT_S }, D));
  }
  await Promise.allSettled(calls);
}

/**
 * Which loops a thread runs: the exec probes and the stats loop (the heavy ones for a client: 15
 * calls a second, and ~100 KB stats answers to decode) each run in a worker thread of their own,
 * the light loops (relist, pod status, image fs, status) in the main thread. A kubelet's loops
 * are goroutines on every core; in one Node thread, a light call's latency would include this
 * client's own stalls (its event-loop delay reached p99 12.5 ms with everything in one thread,
 * the same as the Status and ImageFsInfo tails then seen).
 */
type LoopPart = 'probes' | 'stats' | 'light';

async function runLoad(
  t: Pick<Target, 'clients'>,
  pods: Pod[],
  s: Stopper,
  start: number,
  end: number,
  parts: ReadonlySet<LoopPart>,
): Promise<Loops> {
  const r = t.clients.runtime;
  const L: Loops = {
    relist: new Metric(),
    podStatus: new Metric(),
    probe: new Metric(),
    stats: new Metric(),
    listContainerStats: new Metric(),
    listPodSandboxStats: new Metric(),
    imageFsInfo: new Metric(),
    status: new Metric(),
    statusVerbose: new Metric(),
    probeOk: 0,
    probeLate: 0,
    probeTimedOut: 0,
    probeOther: 0,
    probeSamples: [],
    maxRun: new Map(),
    podStatsUnimplemented: false,
    eventLoop: [],
  };
  const D = RUNTIME_REQUEST_TIMEOUT_MS;
  const loops: Promise<void>[] = [];

  const light = parts.has('light');
  if (light)
    loops.push(
      periodic(s, start, end, 0, RELIST_PERIOD_MS, 'sliding', async () => {
        await timed(L.relist, async () => {
          await call(r, 'ListPodSandbox', {}, D);
          await call(r, 'ListContainers', {}, D);
        });
      }),
    );

  pods.forEach((p, i) => {
    let run = 0;
    if (parts.has('probes')) {
      L.maxRun.set(p.id, 0);
      loops.push(
        periodic(s, start, end, (i * PROBE_PERIOD_MS) / pods.length, PROBE_PERIOD_MS, 'ticker', async () => {
          const t0 = now();
          let failed = true;
          try {
            const res = await call(
              r,
              'ExecSync',
              { container_id: p.app, cmd: PROBE_CMD, timeout: PROBE_TIMEOUT_S },
              PROBE_TIMEOUT_S * 1000 + RUNTIME_REQUEST_TIMEOUT_MS,
            );
            const ms = now() - t0;
            L.probe.record(ms);
            if (res.exit_code === 0) {
              L.probeOk++;
              failed = false;
              if (ms > PROBE_TIMEOUT_S * 1000) L.probeLate++;
            } else {
              L.probeOther++;
              if (L.probeSamples.length < 3) L.probeSamples.push(`exit ${res.exit_code}`);
            }
          } catch (err) {
            L.probe.record(now() - t0, err);
            const e = err as Partial<grpc.ServiceError>;
            if (e.code === grpc.status.DEADLINE_EXCEEDED) L.probeTimedOut++;
            else {
              L.probeOther++;
              if (L.probeSamples.length < 3) {
                L.probeSamples.push(
                  `${grpc.status[e.code ?? 2] ?? 'ERROR'}: ${String(e.details ?? err).slice(0, 160)}`,
                );
              }
            }
          }
          run = failed ? run + 1 : 0;
          if (run > (L.maxRun.get(p.id) ?? 0)) L.maxRun.set(p.id, run);
        }),
      );
    }
    if (light)
      loops.push(
        periodic(
          s,
          start,
          end,
          (i * POD_STATUS_PERIOD_MS) / pods.length,
          POD_STATUS_PERIOD_MS,
          'sliding',
          async () => {
            await timed(L.podStatus, async () => {
              await call(r, 'PodSandboxStatus', { pod_sandbox_id: p.id, verbose: false }, D);
              for (const c of p.containers)
                await call(r, 'ContainerStatus', { container_id: c, verbose: false }, D);
            });
          },
        ),
      );
  });

  if (parts.has('stats'))
    loops.push(
      periodic(s, start, end, 3000, STATS_PERIOD_MS, 'sliding', async () => {
        // the two calls' own times; one skipped as UNIMPLEMENTED adds nothing
        let ms = 0;
        let failed: unknown;
        const c0 = now();
        try {
          await call(r, 'ListContainerStats', {}, D);
          L.listContainerStats.record(now() - c0);
        } catch (err) {
          L.listContainerStats.record(now() - c0, err);
          failed = err;
        }
        ms += now() - c0;
        if (!L.podStatsUnimplemented) {
          const p0 = now();
          try {
            await call(r, 'ListPodSandboxStats', {}, D);
            L.listPodSandboxStats.record(now() - p0);
            ms += now() - p0;
          } catch (err) {
            if ((err as grpc.ServiceError).code === grpc.status.UNIMPLEMENTED) {
              L.podStatsUnimplemented = true;
            } else {
              L.listPodSandboxStats.record(now() - p0, err);
              ms += now() - p0;
              failed ??= err;
            }
          }
        }
        L.stats.record(ms, failed);
      }),
    );

  if (light)
    loops.push(
      periodic(s, start, end, 7000, IMAGEFS_PERIOD_MS, 'sliding', async () => {
        await timed(L.imageFsInfo, () => call(t.clients.image, 'ImageFsInfo', {}, D));
      }),
    );
  if (light)
    loops.push(
      periodic(s, start, end, 1000, STATUS_PERIOD_MS, 'sliding', async () => {
        await timed(L.status, () => call(r, 'Status', { verbose: false }, D));
      }),
    );
  if (light)
    loops.push(
      periodic(s, start, end, EVENT_LOOP_PERIOD_MS, EVENT_LOOP_PERIOD_MS, 'sliding', async () => {
        const res = (await timed(L.statusVerbose, () => call(r, 'Status', { verbose: true }, D))) as
          | { info?: Record<string, string> }
          | undefined;
        const raw = res?.info?.eventLoop;
        if (raw === undefined) return;
        try {
          L.eventLoop.push(JSON.parse(raw) as EventLoopSample);
        } catch {
          log(`info.eventLoop is not JSON: ${raw.slice(0, 200)}`);
        }
      }),
    );

  await Promise.all(loops);
  return L;
}

/** Loops as plain data (Metric and Map are not structured-cloned as such). */
interface LoopsData {
  metrics: Record<string, { ms: number[]; ok: number; errors: [string, number][]; samples: string[] }>;
  counters: Record<string, number>;
  probeSamples: string[];
  maxRun: [string, number][];
  podStatsUnimplemented: boolean;
  eventLoop: EventLoopSample[];
}

const METRIC_KEYS = [
  'relist',
  'podStatus',
  'probe',
  'stats',
  'listContainerStats',
  'listPodSandboxStats',
  'imageFsInfo',
  'status',
  'statusVerbose',
] as const;
const COUNTER_KEYS = ['probeOk', 'probeLate', 'probeTimedOut', 'probeOther'] as const;

function loopsData(L: Loops): LoopsData {
  return {
    metrics: Object.fromEntries(
      METRIC_KEYS.map((k) => {
        const m = L[k];
        return [k, { ms: m.ms, ok: m.ok, errors: [...m.errors], samples: m.samples }];
      }),
    ),
    counters: Object.fromEntries(COUNTER_KEYS.map((k) => [k, L[k]])),
    probeSamples: L.probeSamples,
    maxRun: [...L.maxRun],
    podStatsUnimplemented: L.podStatsUnimplemented,
    eventLoop: L.eventLoop,
  };
}

/** Adds a worker's loops into `L`. */
function mergeLoops(L: Loops, d: LoopsData): void {
  for (const k of METRIC_KEYS) {
    const src = d.metrics[k];
    if (!src) continue;
    const m = L[k];
    m.ms.push(...src.ms);
    m.ok += src.ok;
    for (const [code, n] of src.errors) m.errors.set(code, (m.errors.get(code) ?? 0) + n);
    m.samples.push(...src.samples.slice(0, Math.max(0, 3 - m.samples.length)));
  }
  for (const k of COUNTER_KEYS) L[k] += d.counters[k] ?? 0;
  L.probeSamples.push(...d.probeSamples.slice(0, Math.max(0, 3 - L.probeSamples.length)));
  for (const [id, n] of d.maxRun) L.maxRun.set(id, Math.max(n, L.maxRun.get(id) ?? 0));
  L.podStatsUnimplemented ||= d.podStatsUnimplemented;
  L.eventLoop.push(...d.eventLoop);
}

interface LoopWorkerData {
  loadPart: LoopPart;
  endpoint: string;
  pods: Pod[];
  /** the window, as epoch ms (performance.now() differs between threads) */
  startEpoch: number;
  endEpoch: number;
}

/** The light loops here, the probes and the stats each in a worker thread with its own channel. */
async function runLoadThreads(
  t: Target,
  pods: Pod[],
  s: Stopper,
  start: number,
  end: number,
): Promise<Loops> {
  const toEpoch = (x: number): number => performance.timeOrigin + x;
  const workers = (['probes', 'stats'] as const).map((part) => {
    const data: LoopWorkerData = {
      loadPart: part,
      endpoint: t.endpoint,
      pods,
      startEpoch: toEpoch(start),
      endEpoch: toEpoch(end),
    };
    const w = new Worker(__filename, { workerData: data });
    const done = new Promise<LoopsData>((resolve, reject) => {
      w.once('message', (m: LoopsData) => resolve(m));
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`${part} loop worker exited with ${code}`)));
    });
    // awaited below; a worker ended after a failed run must not be an unhandled rejection
    done.catch(() => undefined);
    return { w, done };
  });
  const onStop = setInterval(() => {
    if (!s.stopped) return;
    for (const { w } of workers) w.postMessage('stop');
    clearInterval(onStop);
  }, 200);
  try {
    const L = await runLoad(t, pods, s, start, end, new Set(['light']));
    for (const { done } of workers) mergeLoops(L, await done);
    return L;
  } finally {
    clearInterval(onStop);
    // their figures are in (or the run failed): nothing more to wait for from them
    for (const { w } of workers) void w.terminate();
  }
}

/** A loop worker: runs its part of the load against the endpoint and posts the figures. */
async function loopWorker(d: LoopWorkerData): Promise<void> {
  const clients = connect(d.endpoint);
  const s = new Stopper();
  parentPort?.on('message', (m) => {
    if (m === 'stop') s.stop();
  });
  try {
    // this thread's first calls (codec generation) before the window, as warmUp does for the main one
    const p = d.pods[0];
    if (p && d.loadPart === 'probes')
      await call(clients.runtime, 'ExecSync', {
        container_id: p.app,
        cmd: PROBE_CMD,
        timeout: PROBE_TIMEOUT_S,
      }).catch(() => undefined);
    if (d.loadPart === 'stats') {
      await call(clients.runtime, 'ListContainerStats', {}).catch(() => undefined);
      await call(clients.runtime, 'ListPodSandboxStats', {}).catch(() => undefined);
    }
    const local = (epoch: number): number => epoch - performance.timeOrigin;
    const L = await runLoad(
      { clients },
      d.pods,
      s,
      local(d.startEpoch),
      local(d.endEpoch),
      new Set([d.loadPart]),
    );
    parentPort?.postMessage(loopsData(L));
  } finally {
    clients.close();
  }
}

// ---------------------------------------------------------------------------------------------
// one run against one target

async function runOne(kind: 'berth' | 'containerd' | 'endpoint'): Promise<Result> {
  const ourIds = new Set<string>();
  log(`starting ${kind === 'endpoint' ? ENDPOINT : kind}`);
  const t =
    kind === 'berth'
      ? await startBerthTarget()
      : kind === 'containerd'
        ? await startContainerdTarget()
        : await startEndpointTarget(ENDPOINT as string, ourIds);
  const podIds: string[] = [];
  try {
    const v = await call(t.clients.runtime, 'Version', { version: 'v1' }, 10_000);
    const runtime = `${v.runtime_name} ${v.runtime_version}`;
    log(`${runtime} at ${t.endpoint}; starting ${PODS} pods`);

    // set-up, SETUP_PARALLEL at a time
    const setupStart = now();
    const pods: Pod[] = [];
    const setupErrors: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: SETUP_PARALLEL }, async () => {
        while (next < PODS && !interrupted) {
          const i = next++;
          try {
            const p = await startPod(t, i, (id) => {
              podIds.push(id);
              ourIds.add(id);
            });
            for (const c of p.containers) ourIds.add(c);
            pods.push(p);
          } catch (err) {
            setupErrors.push(`pod ${i}: ${String((err as grpc.ServiceError).details ?? err)}`.slice(0, 300));
          }
        }
      }),
    );
    const setupS = (now() - setupStart) / 1000;
    if (interrupted) throw new Error('interrupted');
    pods.sort((a, b) => a.index - b.index);
    log(
      `${pods.length}/${PODS} pods running after ${setupS.toFixed(1)} s${setupErrors.length ? `; failures: ${setupErrors.join('; ')}` : ''}`,
    );
    if (pods.length === 0) throw new Error(`no pod could be started: ${setupErrors.join('; ')}`);

    const hp = pods.filter((p) => p.hostPort !== undefined);
    const hpErrors = (await Promise.all(hp.map((p) => hostPortError(p.hostPort as number, 10_000)))).filter(
      (e): e is string => e !== undefined,
    );
    log(
      `hostPort: ${hp.length - hpErrors.length}/${hp.length} answer on 127.0.0.1` +
        `${hpErrors.length ? ` (not: ${hpErrors.join(', ')})` : ''}; load for ${DURATION_S} s`,
    );

    // idle: the pods run, nobody calls; what the daemon costs by itself
    let idleOwnPct: number | null = null;
    if (IDLE_S > 0 && t.daemonPid !== undefined) {
      log(`idle for ${IDLE_S} s`);
      const i0 = procStat(t.daemonPid);
      const it0 = now();
      await new Promise((r) => setTimeout(r, IDLE_S * 1000));
      const i1 = procStat(t.daemonPid);
      if (i0 && i1) idleOwnPct = ((i1.own - i0.own) * 10 * 100) / (now() - it0);
    }

    // One untimed call of each kind the loops make, so neither this client's first-call costs
    // (protobufjs generates a message type's codec on its first use: ~20-40 ms of this process's
    // loop when 30 probes, a relist and the status calls all start at once) nor a fresh
    // connection's land in the window's figures; a kubelet has been calling all along.
    await warmUp(t, pods);

    // the window
    const stopper = new Stopper();
    interruptStopper.add(stopper);
    const pid = t.daemonPid;
    const mon0 = new Map<number, number>();
    for (const m of t.monitors()) {
      const st = procStat(m);
      if (st) mon0.set(m, st.own + st.children);
    }
    const d0 = pid !== undefined ? procStat(pid) : undefined;
    const h0 = hostCpu();
    const c0 = process.cpuUsage();
    const eld = monitorEventLoopDelay({ resolution: 10 });
    eld.enable();
    const start = now();
    const end = start + DURATION_S * 1000;

    let sampled: (() => void) | undefined;
    const endSample = new Promise<{
      d1?: ReturnType<typeof procStat>;
      mon1: Map<number, number>;
      h1: ReturnType<typeof hostCpu>;
      c1: NodeJS.CpuUsage;
      wallMs: number;
      daemonRss: number | null;
      monitorsRss: number;
    }>((resolve) => {
      const take = (): void => {
        const wallMs = now() - start;
        const d1 = pid !== undefined ? procStat(pid) : undefined;
        const mon1 = new Map<number, number>();
        let monitorsRss = 0;
        for (const m of t.monitors()) {
          const st = procStat(m);
          if (st) mon1.set(m, st.own + st.children);
          monitorsRss += procStatusKb(m);
        }
        resolve({
          d1,
          mon1,
          h1: hostCpu(),
          c1: process.cpuUsage(c0),
          wallMs,
          daemonRss: pid !== undefined ? procStatusKb(pid) : null,
          monitorsRss,
        });
      };
      const timer = setTimeout(take, DURATION_S * 1000);
      sampled = () => {
        clearTimeout(timer);
        take();
      };
    });
    const loadDone = runLoadThreads(t, pods, stopper, start, end);
    const w = await Promise.race([endSample, loadDone.then(() => undefined)]);
    const sample = w ?? (sampled?.(), await endSample);
    eld.disable();
    if (!interrupted) log('window over; waiting for calls in flight');
    const L = await loadDone;
    interruptStopper.delete(stopper);
    if (interrupted) throw new Error('interrupted');
    // the ports that did not answer before the load: slow, or never?
    const hpAfter = (
      await Promise.all(hpErrors.map((e) => hostPortError(Number(/^:(\d+)/.exec(e)?.[1]), 0)))
    ).filter((e): e is string => e !== undefined);
    if (hpErrors.length) log(`hostPort after the load: ${hp.length - hpAfter.length}/${hp.length} answer`);

    const ticksToPct = (ticks: number): number => ((ticks * (1000 / TICKS)) / sample.wallMs) * 100;
    let own: number | null = null;
    let children: number | null = null;
    if (d0 && sample.d1) {
      own = ticksToPct(sample.d1.own - d0.own);
      let monTicks = 0;
      for (const [m, v] of sample.mon1) monTicks += v - (mon0.get(m) ?? 0);
      children = ticksToPct(sample.d1.children - d0.children + monTicks);
    }
    const hostTotal = sample.h1.total - h0.total;
    const hostBusyPct =
      hostTotal > 0 ? ((hostTotal - (sample.h1.idle - h0.idle)) / hostTotal) * 100 * os.cpus().length : 0;
    const runs = [...L.maxRun.values()];
    const p99s = L.eventLoop.map((e) => e.delay_ms?.p99).filter((x): x is number => typeof x === 'number');
    const utils = L.eventLoop.map((e) => e.utilization).filter((x): x is number => typeof x === 'number');

    return {
      target: t.name,
      runtime,
      endpoint: t.endpoint,
      pods_requested: PODS,
      pods_running: pods.length,
      containers: pods.reduce((n, p) => n + p.containers.length, 0),
      setup_s: setupS,
      setup_errors: setupErrors,
      hostport: {
        pods: hp.length,
        answered: hp.length - hpErrors.length,
        answered_after: hp.length - hpAfter.length,
        errors: hpErrors,
      },
      window_s: sample.wallMs / 1000,
      idle_s: IDLE_S,
      idle_own_pct: idleOwnPct,
      probes: {
        total: L.probeOk + L.probeTimedOut + L.probeOther,
        ok: L.probeOk,
        ok_late: L.probeLate,
        timed_out: L.probeTimedOut,
        other_errors: L.probeOther,
        error_samples: L.probeSamples,
        pods_with_3_consecutive_failures: runs.filter((x) => x >= FAILURE_THRESHOLD).length,
        longest_failure_run: runs.length ? Math.max(...runs) : 0,
      },
      latency: {
        relist: L.relist.summary(),
        get_pod_status: L.podStatus.summary(),
        exec_probe: L.probe.summary(),
        stats: L.stats.summary(),
        list_container_stats: L.listContainerStats.summary(),
        list_pod_sandbox_stats: L.listPodSandboxStats.summary(),
        image_fs_info: L.imageFsInfo.summary(),
        status: L.status.summary(),
        status_verbose: L.statusVerbose.summary(),
      },
      pod_stats_unimplemented: L.podStatsUnimplemented,
      cpu: {
        daemon_pid: pid ?? null,
        own_pct: own,
        children_pct: children,
        total_pct: own !== null && children !== null ? own + children : null,
        host_busy_pct: hostBusyPct,
        monitors: sample.mon1.size,
        monitors_new: [...sample.mon1.keys()].filter((m) => !mon0.has(m)).length,
        monitors_gone: [...mon0.keys()].filter((m) => !sample.mon1.has(m)).length,
      },
      rss: {
        daemon_mb: sample.daemonRss !== null ? sample.daemonRss / 1024 : null,
        monitors_mb: sample.monitorsRss / 1024,
      },
      event_loop:
        L.eventLoop.length > 0
          ? {
              samples: L.eventLoop,
              p99_max_ms: p99s.length ? Math.max(...p99s) : null,
              p99_median_ms: p99s.length ? median(p99s) : null,
              utilization_mean: utils.length ? utils.reduce((a, b) => a + b, 0) / utils.length : null,
            }
          : null,
      client: {
        cpu_pct: ((sample.c1.user + sample.c1.system) / 1000 / sample.wallMs) * 100,
        event_loop_p99_ms: eld.percentile(99) / 1e6,
        event_loop_max_ms: eld.max / 1e6,
      },
    };
  } finally {
    log(`removing ${podIds.length} pods`);
    const r = t.clients.runtime;
    let i = 0;
    await Promise.all(
      Array.from({ length: SETUP_PARALLEL }, async () => {
        while (i < podIds.length) {
          const id = podIds[i++];
          await call(r, 'StopPodSandbox', { pod_sandbox_id: id }, RUNTIME_REQUEST_TIMEOUT_MS).catch(
            (err: unknown) => log(`StopPodSandbox ${id}: ${String(err)}`),
          );
          await call(r, 'RemovePodSandbox', { pod_sandbox_id: id }, RUNTIME_REQUEST_TIMEOUT_MS).catch(
            (err: unknown) => log(`RemovePodSandbox ${id}: ${String(err)}`),
          );
        }
      }),
    );
    await t.cleanup();
    if (t.cgroupRoot) {
      for (const e of removeCgroupTree(t.cgroupRoot)) log(e);
    }
    log(`${t.name} cleaned up`);
  }
}

// ---------------------------------------------------------------------------------------------
// printing

type Cell = number | null | string;
interface Row {
  label: string;
  values: Cell[];
  /** digits for numbers */
  digits?: number;
  /** no ratio for this row */
  noRatio?: boolean;
}

function rows(results: Result[]): Row[] {
  const out: Row[] = [];
  const add = (label: string, f: (r: Result) => Cell, digits = 0, noRatio = false): void => {
    out.push({ label, values: results.map(f), digits, noRatio });
  };
  add('runtime', (r) => r.runtime, 0, true);
  add('pods running / containers', (r) => `${r.pods_running}/${r.pods_requested} / ${r.containers}`, 0, true);
  add('setup (s)', (r) => r.setup_s, 1);
  add(
    'hostPort answering before / after the load',
    (r) => `${r.hostport.answered}/${r.hostport.pods} / ${r.hostport.answered_after}/${r.hostport.pods}`,
    0,
    true,
  );
  add('window (s)', (r) => r.window_s, 1, true);
  add('exec probes', (r) => r.probes.total);
  add('  ok', (r) => r.probes.ok);
  add('  ok but > 1 s', (r) => r.probes.ok_late);
  add('  timed out (DEADLINE_EXCEEDED)', (r) => r.probes.timed_out);
  add('  other errors', (r) => r.probes.other_errors);
  add(
    `  pods with >= ${FAILURE_THRESHOLD} failures in a row`,
    (r) => r.probes.pods_with_3_consecutive_failures,
  );
  add('  longest failure run', (r) => r.probes.longest_failure_run);
  const lat: [string, string][] = [
    ['relist (ListPodSandbox+ListContainers)', 'relist'],
    ['GetPodStatus', 'get_pod_status'],
    ['exec probe (ExecSync)', 'exec_probe'],
    ['stats (ListContainerStats+ListPodSandboxStats)', 'stats'],
    ['  ListContainerStats', 'list_container_stats'],
    ['  ListPodSandboxStats', 'list_pod_sandbox_stats'],
    ['ImageFsInfo', 'image_fs_info'],
    ['Status', 'status'],
  ];
  for (const [label, key] of lat) {
    add(`${label} ms p50`, (r) => r.latency[key].p50_ms, 1);
    add(`${' '.repeat(label.length)}    p99`, (r) => r.latency[key].p99_ms, 1);
    add(`${' '.repeat(label.length)}    max`, (r) => r.latency[key].max_ms, 1);
    add(
      `${' '.repeat(label.length)}    calls / errors`,
      (r) => `${r.latency[key].n} / ${r.latency[key].errors}`,
      0,
      true,
    );
  }
  add(`daemon CPU % of a core, idle ${IDLE_S} s (own)`, (r) => r.idle_own_pct, 1);
  add('daemon CPU % of a core: own', (r) => r.cpu.own_pct, 1);
  add('                        children', (r) => r.cpu.children_pct, 1);
  add('                        total', (r) => r.cpu.total_pct, 1);
  add(
    'daemon CPU ms per exec probe (total / probes)',
    (r) =>
      r.cpu.total_pct !== null && r.probes.total > 0
        ? ((r.cpu.total_pct / 100) * r.window_s * 1000) / r.probes.total
        : null,
    1,
  );
  add('host CPU busy % (all cores)', (r) => r.cpu.host_busy_pct, 1);
  add('daemon RSS MB (end)', (r) => r.rss.daemon_mb, 1);
  add(
    'monitors (conmon/shim): count / RSS MB',
    (r) => `${r.cpu.monitors} / ${(r.rss.monitors_mb ?? 0).toFixed(1)}`,
    0,
    true,
  );
  add('event loop p99 ms: max of 10 s windows', (r) => r.event_loop?.p99_max_ms ?? 'n/a', 1);
  add('                   median of windows', (r) => r.event_loop?.p99_median_ms ?? 'n/a', 1);
  add('event loop utilisation (mean)', (r) => r.event_loop?.utilization_mean ?? 'n/a', 2);
  add(
    'client CPU % / event-loop p99 ms',
    (r) => `${r.client.cpu_pct.toFixed(1)} / ${r.client.event_loop_p99_ms.toFixed(1)}`,
    0,
    true,
  );
  return out;
}

function fmt(c: Cell, digits: number): string {
  if (c === null) return 'n/a';
  if (typeof c === 'string') return c;
  return c.toFixed(digits);
}

function render(results: Result[]): string {
  const rs = rows(results);
  const ratio = results.length === 2;
  const header = [
    '',
    ...results.map((r) => r.target),
    ...(ratio ? [`${results[0].target}/${results[1].target}`] : []),
  ];
  const table = rs.map((row) => {
    const cells = row.values.map((v) => fmt(v, row.digits ?? 0));
    if (ratio) {
      const [a, b] = row.values;
      cells.push(
        !row.noRatio && typeof a === 'number' && typeof b === 'number' && b !== 0
          ? `${(a / b).toFixed(2)}x`
          : '',
      );
    }
    return [row.label, ...cells];
  });
  const all = [header, ...table];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const lines = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...table.map(line)];
  const notes: string[] = [];
  for (const r of results) {
    if (r.pod_stats_unimplemented)
      notes.push(`${r.target}: ListPodSandboxStats is UNIMPLEMENTED; "stats" is ListContainerStats alone`);
    if (r.hostport.errors.length)
      notes.push(`${r.target}: hostPort not answering before the load: ${r.hostport.errors.join(', ')}`);
    if (r.setup_errors.length)
      notes.push(`${r.target}: pods that failed to start: ${r.setup_errors.join('; ')}`);
    if (r.probes.error_samples.length)
      notes.push(`${r.target}: probe errors, e.g. ${r.probes.error_samples.join(' | ')}`);
    for (const [k, l] of Object.entries(r.latency)) {
      if (l.errors > 0 && k !== 'exec_probe')
        notes.push(`${r.target}: ${k} errors: ${l.error_samples.join(' | ')}`);
    }
    if (r.cpu.monitors_new || r.cpu.monitors_gone) {
      notes.push(
        `${r.target}: monitors appeared/vanished during the window: ${r.cpu.monitors_new}/${r.cpu.monitors_gone}`,
      );
    }
    if (r.event_loop === null && r.target === 'berth' && r.latency.status_verbose.n > 0)
      notes.push(`${r.target}: Status verbose has no info.eventLoop`);
  }
  return [...lines, ...notes.map((n) => `note: ${n}`)].join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const onSignal = (sig: string): void => {
    if (interrupted) {
      log(`${sig} again: still cleaning up, please wait`);
      return;
    }
    interrupted = true;
    log(`${sig}: stopping and cleaning up`);
    for (const s of interruptStopper) s.stop();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  const plan: ('berth' | 'containerd' | 'endpoint')[] = ENDPOINT
    ? ['endpoint']
    : COMPARE
      ? ['berth', 'containerd']
      : TARGET === 'containerd'
        ? ['containerd']
        : TARGET === 'berth'
          ? ['berth']
          : [];
  if (plan.length === 0) throw new Error(`BENCH_TARGET must be berth or containerd, got ${TARGET}`);

  process.stdout.write(
    `load: ${PODS} pods (${KINDS.join(', ')}, repeating), ${DURATION_S} s of kubelet-shaped load: relist 1 s, ` +
      `exec probe 2 s (timeout ${PROBE_TIMEOUT_S} s) per pod, GetPodStatus 10 s per pod, stats 10 s, ` +
      `ImageFsInfo 10 s, Status 5 s; ${os.cpus().length} CPUs\n`,
  );
  const results: Result[] = [];
  const failures: string[] = [];
  for (const k of plan) {
    if (interrupted) break;
    try {
      results.push(await runOne(k));
    } catch (err) {
      if (interrupted) break;
      // in a comparison the other runtime still runs; the failure is printed and fails the bench
      failures.push(`${k}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      log(`${k} failed: ${String(err)}`);
    }
  }
  if (results.length) process.stdout.write(render(results));
  if (JSON_OUT) {
    fs.writeFileSync(
      JSON_OUT,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          pods: PODS,
          duration_s: DURATION_S,
          cpus: os.cpus().length,
          periods_ms: {
            relist: RELIST_PERIOD_MS,
            probe: PROBE_PERIOD_MS,
            pod_status: POD_STATUS_PERIOD_MS,
            stats: STATS_PERIOD_MS,
            image_fs_info: IMAGEFS_PERIOD_MS,
            status: STATUS_PERIOD_MS,
            event_loop: EVENT_LOOP_PERIOD_MS,
          },
          results,
          failures,
        },
        null,
        2,
      ) + '\n',
    );
    log(`figures written to ${JSON_OUT}`);
  }
  if (failures.length) throw new Error(failures.join('\n'));
}

if (!isMainThread && (workerData as Partial<LoopWorkerData> | null)?.loadPart) {
  void loopWorker(workerData as LoopWorkerData);
} else
  main().then(
    () => process.exit(interrupted ? 130 : 0),
    (err: unknown) => {
      process.stderr.write(
        `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(interrupted ? 130 : 1);
    },
  );
