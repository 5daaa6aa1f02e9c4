// Pod lifecycle benchmark, side by side with Debian's containerd: 50 pods with one container each
// (RunPodSandbox, CreateContainer, StartContainer, StopContainer, RemoveContainer, StopPodSandbox,
// RemovePodSandbox), first one at a time, then 10 at a time, one target after the other (all are
// up throughout); then ImageStatus and ListImages of all targets, timed in rounds that alternate
// them (once each daemon is quiet: Berth's background cleanup of the removed pods does not count
// as read latency; 3000 untimed calls first, so the code of both ends is past V8's warm-up); then
// 50 running pods per target for memory: the daemon's RSS idle (2 s after a warm-up pod's lifecycle,
// and BENCH_IDLE_SETTLE_S later), with the pods (2 s after the last
// one started, and again a minute later, once the start burst has settled), and a minute after
// removing them (plus the per-pod monitors: conmon for Berth, containerd-shim-runc-v2 for
// containerd).
//
// Pods are shaped as kubelet sends them: kubelet's labels and annotations, a cgroup parent per pod,
// DNS config, a hostname, the lab CNI chain (loopback + bridge + portmap, no NAT); containers get
// kubelet's labels too.
//
// For Berth it also prints where each RPC's time goes (its steps, from Status verbose `phases`),
// and, measured between the targets' runs, the floor under CreateContainer + StartContainer:
// runc create + start of a prepared busybox bundle, alone and with conmon in front (runtime-floor.ts).
//
// Run (needs root):
//   npm run bench -- pods                         Berth and containerd (BENCH_TARGETS=berth to skip it)
//   BENCH_IDLE_SETTLE_S=S (30: the idle RSS is read 2 s after the warm-up pod and again S s later,
//   once a daemon that returns memory after bursts has had the time to; 0 skips the second read)
//   BENCH_PODS=N (50), BENCH_PARALLEL=N (10), BENCH_SETTLE_S=S (60: wait before the "settled" and
//   "after" RSS)
//   BENCH_FLOOR_RUNS=N (20; 0 skips the floor)
//   BENCH_BERTH_HANDLER=crun: Berth's pods on that runtime handler (RunPodSandbox runtime_handler;
//   containerd stays on runc)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { call, type CriClients } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { removeCgroupTree } from '../lab/containerd';
import { KUBELET_NAMESPACES, startHarness } from '../lab/harness';
import { startLabContainerd } from '../lab/containerd-anchor';
import { procStat, procStatusKb } from '../lab/proc';
import { pctNearestRank as pct } from '../lab/percentiles';
import { type FloorTimings, measureRuntimeFloor } from './runtime-floor';

const PODS = Number(process.env.BENCH_PODS ?? 50);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 10);
const SETTLE_S = Number(process.env.BENCH_SETTLE_S ?? 60);
const IDLE_SETTLE_S = Number(process.env.BENCH_IDLE_SETTLE_S ?? 30);
const FLOOR_RUNS = Number(process.env.BENCH_FLOOR_RUNS ?? 20);
/** Berth's pods' runtime handler ('' = the default) */
const HANDLER = process.env.BENCH_BERTH_HANDLER ?? '';
const TARGETS = (process.env.BENCH_TARGETS ?? 'berth,containerd').split(',').filter(Boolean);
const READS = 200;
/** rounds the timed image reads are split into, alternating the targets' order */
const READ_ROUNDS = 10;
/** untimed image reads before the timed ones */
const WARM_READS = 3000;
const RPCS = [
  'RunPodSandbox',
  'CreateContainer',
  'StartContainer',
  'StopContainer',
  'RemoveContainer',
  'StopPodSandbox',
  'RemovePodSandbox',
] as const;

type Timings = Record<string, number[]>;

interface Target {
  name: string;
  clients: CriClients;
  busybox: string;
  pause: string;
  logDir: string;
  daemonPid: number;
  monitors(): number[];
  cgroupRoot: string;
  /** RunPodSandbox runtime_handler ('' = the default) */
  handler?: string;
  cleanup(): Promise<void>;
}

interface Result {
  name: string;
  seq: Timings;
  seqWallMs: number;
  par: Timings;
  parWallMs: number;
  reads: Timings;
  /** seconds waited for the daemon to go quiet before the image reads */
  readsAfterS: number;
  rss: {
    /** 2 s after the warm-up pod */
    idle: number;
    /** IDLE_SETTLE_S later (unless 0) */
    idleSettled?: number;
    withPods: number;
    withPodsSettled: number;
    after: number;
    monitorsKb: number;
    monitors: number;
  };
  /** Berth's Status verbose `phases` after the sequential run: RPC → step → p50/p90 ms */
  phases?: Record<string, Record<string, { n: number; p50: number; p90: number }>>;
}

function conmonPids(state: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.startsWith('/usr/bin/conmon') && cmd.includes(state)) out.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function timed<T>(t: Timings, name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const r = await fn();
  (t[name] ??= []).push(performance.now() - t0);
  return r;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the daemon has used under 2 % of a core over a second (at most 30 s): work left
 * from earlier steps (Berth removes containers' and pods' files in the background after the RPC
 * answered) is not measured as the next step's latency. Returns the seconds waited.
 */
async function quiet(pid: number): Promise<number> {
  const t0 = performance.now();
  const cpuTicks = (): number => procStat(pid)?.own ?? 0;
  let last = cpuTicks();
  while (performance.now() - t0 < 30_000) {
    await sleep(1000);
    const now = cpuTicks();
    // 100 ticks a second: under 2 ticks is under 2 % of a core
    if (now - last < 2) break;
    last = now;
  }
  return (performance.now() - t0) / 1000;
}

async function berthTarget(): Promise<Target> {
  const h = await startHarness({
    bridge: 'berthbn0',
    subnet: '10.248.0.0/24',
    prefix: 'bench',
    config: { log_level: 'warn' },
  });
  const state = h.d.state;
  return {
    name: 'berth',
    clients: h.d.clients,
    busybox: h.busybox,
    pause: `${h.reg.host}/pause:3.10`,
    logDir: h.logDir,
    daemonPid: h.d.proc.pid!,
    monitors: () => conmonPids(state),
    cgroupRoot: `/berthpods-${process.pid}-berth`,
    handler: HANDLER,
    cleanup: () => h.cleanup(),
  };
}

async function containerdTarget(): Promise<Target> {
  const c = await startLabContainerd({ bridge: 'berthbn1', subnet: '10.232.0.0/24' });
  return {
    name: 'containerd',
    clients: c.clients,
    busybox: c.busybox,
    pause: c.pause,
    logDir: c.logDir,
    daemonPid: c.pid,
    monitors: () => c.shimPids(),
    cgroupRoot: `/berthpods-${process.pid}-containerd`,
    cleanup: () => c.cleanup(),
  };
}

let counter = 0;

/** A pod and a container as kubelet sends them; the container exits promptly on SIGTERM. */
function configs(t: Target): { pod: PodSandboxConfig; ctr: ContainerConfig } {
  const n = `bench-${++counter}`;
  const uid = `uid-${n}-${process.pid}-${t.name}`;
  const labels = {
    'io.kubernetes.pod.name': n,
    'io.kubernetes.pod.namespace': 'bench',
    'io.kubernetes.pod.uid': uid,
  };
  const pod: PodSandboxConfig = {
    metadata: { name: n, namespace: 'bench', uid, attempt: 0 },
    hostname: n,
    log_directory: path.join(t.logDir, n),
    dns_config: {
      servers: ['10.96.0.10'],
      searches: ['bench.svc.cluster.local', 'svc.cluster.local'],
      options: ['ndots:5'],
    },
    labels,
    annotations: {
      'kubernetes.io/config.seen': new Date().toISOString(),
      'kubernetes.io/config.source': 'api',
    },
    linux: {
      cgroup_parent: `${t.cgroupRoot}/pod${uid}`,
      security_context: { namespace_options: KUBELET_NAMESPACES },
    },
  };
  const ctr: ContainerConfig = {
    metadata: { name: 'app', attempt: 0 },
    image: { image: t.busybox },
    command: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'],
    log_path: 'app/0.log',
    labels: { ...labels, 'io.kubernetes.container.name': 'app' },
    annotations: { 'io.kubernetes.container.restartCount': '0' },
    linux: {},
  };
  return { pod, ctr };
}

async function lifecycle(tg: Target, t: Timings): Promise<void> {
  const { pod, ctr } = configs(tg);
  const r = tg.clients.runtime;
  const T = 120_000;
  const { pod_sandbox_id: podId } = await timed(t, 'RunPodSandbox', () =>
    call(r, 'RunPodSandbox', { config: pod, runtime_handler: tg.handler ?? '' }, T),
  );
  const { container_id: id } = await timed(t, 'CreateContainer', () =>
    call(r, 'CreateContainer', { pod_sandbox_id: podId, config: ctr, sandbox_config: pod }, T),
  );
  await timed(t, 'StartContainer', () => call(r, 'StartContainer', { container_id: id }, T));
  await timed(t, 'StopContainer', () => call(r, 'StopContainer', { container_id: id, timeout: 10 }, T));
  await timed(t, 'RemoveContainer', () => call(r, 'RemoveContainer', { container_id: id }, T));
  await timed(t, 'StopPodSandbox', () => call(r, 'StopPodSandbox', { pod_sandbox_id: podId }, T));
  await timed(t, 'RemovePodSandbox', () => call(r, 'RemovePodSandbox', { pod_sandbox_id: podId }, T));
}

/** The lifecycle part of a target's run: pause pulled, idle RSS, sequential and parallel runs. */
type Lifecycle = Pick<Result, 'name' | 'seq' | 'seqWallMs' | 'par' | 'parWallMs' | 'phases'> & {
  idle: number;
  idleSettled?: number;
};

async function lifecycles(tg: Target): Promise<Lifecycle> {
  // the pause image is pulled before timing starts, as on a node that has run pods before
  await call(tg.clients.image, 'PullImage', { image: { image: tg.pause } }, 120_000);
  const warm: Timings = {};
  await lifecycle(tg, warm);
  await sleep(2000);
  const idle = procStatusKb(tg.daemonPid);
  let idleSettled: number | undefined;
  if (IDLE_SETTLE_S > 0) {
    await sleep(IDLE_SETTLE_S * 1000);
    idleSettled = procStatusKb(tg.daemonPid);
  }

  const seq: Timings = {};
  let t0 = performance.now();
  for (let i = 0; i < PODS; i++) await lifecycle(tg, seq);
  const seqWallMs = performance.now() - t0;
  const phases = await phaseSummary(tg);

  const par: Timings = {};
  t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < PODS) {
        next++;
        await lifecycle(tg, par);
      }
    }),
  );
  const parWallMs = performance.now() - t0;
  return { name: tg.name, seq, seqWallMs, par, parWallMs, phases, idle, idleSettled };
}

/**
 * ImageStatus and ListImages of every target, timed in rounds that alternate the targets' order
 * (READS calls each in all), once each daemon is quiet. Timed one target after the other, minutes
 * apart, the sub-millisecond figures followed the shared VM's state more than the runtimes: the
 * same tree gave 1.9-2.0x in one session and 1.1x in another.
 */
async function imageReads(tgs: Target[]): Promise<{ reads: Timings[]; readsAfterS: number[] }> {
  const readsAfterS: number[] = [];
  for (const tg of tgs) readsAfterS.push(await quiet(tg.daemonPid));
  // untimed calls first: after only a handful, both this client's and the daemons' code for these
  // calls still runs unoptimised (V8 tiers up after many runs; measured 1.3-1.5 ms p50 after 10
  // calls, 0.5-0.7 ms after 1000, 0.23-0.25 ms after 3000 or 2 x 1000), and a kubelet makes these
  // calls all day
  for (const tg of tgs) {
    for (let i = 0; i < WARM_READS; i++) {
      await call(tg.clients.image, 'ImageStatus', { image: { image: tg.busybox } });
      await call(tg.clients.image, 'ListImages', {});
    }
  }
  const reads: Timings[] = tgs.map(() => ({}));
  const per = READS / READ_ROUNDS;
  for (let round = 0; round < READ_ROUNDS; round++) {
    const order = tgs.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const tg = tgs[i]!;
      for (let k = 0; k < per; k++) {
        await timed(reads[i]!, 'ImageStatus', () =>
          call(tg.clients.image, 'ImageStatus', { image: { image: tg.busybox } }),
        );
        await timed(reads[i]!, 'ListImages', () => call(tg.clients.image, 'ListImages', {}));
      }
    }
  }
  return { reads, readsAfterS };
}

/** 50 running pods: the daemon's RSS 2 s and SETTLE_S after they started, and after removing them. */
async function memory(tg: Target): Promise<Omit<Result['rss'], 'idle' | 'idleSettled'>> {
  const running: string[] = [];
  const r = tg.clients.runtime;
  for (let i = 0; i < PODS; i++) {
    const { pod, ctr } = configs(tg);
    const { pod_sandbox_id: podId } = await call(
      r,
      'RunPodSandbox',
      { config: pod, runtime_handler: tg.handler ?? '' },
      120_000,
    );
    const { container_id: id } = await call(
      r,
      'CreateContainer',
      { pod_sandbox_id: podId, config: ctr, sandbox_config: pod },
      120_000,
    );
    await call(r, 'StartContainer', { container_id: id }, 120_000);
    running.push(podId);
  }
  await sleep(2000);
  const withPods = procStatusKb(tg.daemonPid);
  const mons = tg.monitors();
  const monitorsKb = mons.reduce((n, p) => n + procStatusKb(p), 0);
  await sleep(SETTLE_S * 1000);
  const withPodsSettled = procStatusKb(tg.daemonPid);
  for (const podId of running) {
    await call(r, 'StopPodSandbox', { pod_sandbox_id: podId }, 120_000);
    await call(r, 'RemovePodSandbox', { pod_sandbox_id: podId }, 120_000);
  }
  await sleep(SETTLE_S * 1000);
  const after = procStatusKb(tg.daemonPid);
  removeCgroupTree(tg.cgroupRoot);
  return { withPods, withPodsSettled, after, monitorsKb, monitors: mons.length };
}

/** Berth's per-step timings (Status verbose `info.phases`); undefined for other runtimes. */
async function phaseSummary(tg: Target): Promise<Result['phases']> {
  const st = await call(tg.clients.runtime, 'Status', { verbose: true });
  return st.info.phases ? (JSON.parse(st.info.phases) as Result['phases']) : undefined;
}

/** The floor lines: each way's p50s, and Berth's sequential CreateContainer + StartContainer above them. */
function renderFloor(f: FloorTimings, results: Result[]): string[] {
  const p = (xs: number[]): number => pct(xs, 50);
  const runc = p(f.runcCreate) + p(f.runcStart);
  const conmon = p(f.conmonCreate) + p(f.conmonStart);
  const out = [
    `floor under CreateContainer + StartContainer (busybox bundle of runc's default spec, ${f.runcCreate.length} runs each, p50 ms)`,
    `  runc create + runc start             ${p(f.runcCreate).toFixed(1)} + ${p(f.runcStart).toFixed(1)} = ${runc.toFixed(1)}`,
    `  conmon (runc create) + runc start    ${p(f.conmonCreate).toFixed(1)} + ${p(f.conmonStart).toFixed(1)} = ${conmon.toFixed(1)}` +
      `   (conmon's own share: ${(p(f.conmonCreate) - p(f.runcCreate)).toFixed(1)})`,
  ];
  const above = (ms: number, floor: number): string =>
    `${ms >= floor ? '+' : '-'} ${Math.abs(ms - floor).toFixed(1)}`;
  for (const r of results) {
    const cs = p(r.seq.CreateContainer ?? []) + p(r.seq.StartContainer ?? []);
    // containerd runs no conmon (its shim stands in): only the runc floor applies to it
    const viaConmon = r.name === 'containerd' ? '' : `, conmon floor ${above(cs, conmon)}`;
    const handler = r.name === 'berth' && HANDLER ? ` (handler ${HANDLER})` : '';
    out.push(
      `  ${r.name.padEnd(12)} CreateContainer + StartContainer${handler} ${cs.toFixed(1)}: ` +
        `runc floor ${above(cs, runc)}${viaConmon}`,
    );
  }
  return out;
}

function render(results: Result[], floor?: FloorTimings): string {
  const out: string[] = [];
  const base = results.find((x) => x.name === 'containerd');
  const col = (s: string, w = 24): string => s.padStart(w);
  const head = ['', ...results.map((r) => `${r.name} p50/p90/p99`), ...(base ? ['p50 ratio'] : [])];
  const table = (title: string, get: (r: Result) => Timings, names: readonly string[]): void => {
    out.push(title);
    out.push(
      `  ${head[0].padEnd(17)}${head
        .slice(1)
        .map((h) => col(h))
        .join('')}`,
    );
    for (const n of names) {
      const cells = results.map((r) => {
        const xs = get(r)[n] ?? [];
        return col(`${pct(xs, 50).toFixed(1)}/${pct(xs, 90).toFixed(1)}/${pct(xs, 99).toFixed(1)}`);
      });
      const ratio =
        base && results.length > 1
          ? results
              .filter((r) => r !== base)
              .map((r) => (pct(get(r)[n] ?? [], 50) / pct(get(base)[n] ?? [], 50)).toFixed(2) + '×')
              .join(' ')
          : '';
      out.push(`  ${n.padEnd(17)}${cells.join('')}${base ? col(ratio, 12) : ''}`);
    }
  };
  table(`sequential lifecycle, ${PODS} pods (ms)`, (r) => r.seq, RPCS);
  out.push(`  wall: ${results.map((r) => `${r.name} ${(r.seqWallMs / 1000).toFixed(1)} s`).join(', ')}`);
  if (floor) out.push(...renderFloor(floor, results));
  table(`${PARALLEL}-way parallel lifecycle, ${PODS} pods (ms)`, (r) => r.par, RPCS);
  out.push(`  wall: ${results.map((r) => `${r.name} ${(r.parWallMs / 1000).toFixed(1)} s`).join(', ')}`);
  table(
    `image reads, ${READS} each in ${READ_ROUNDS} alternating rounds, once the daemons are quiet (waited ${results
      .map((r) => `${r.name} ${r.readsAfterS.toFixed(0)} s`)
      .join(', ')}) (ms)`,
    (r) => r.reads,
    ['ImageStatus', 'ListImages'],
  );
  for (const r of results) {
    if (!r.phases) continue;
    out.push(`${r.name}: where the time goes (steps of each RPC, warm-up + sequential run, p50/p90 ms)`);
    for (const [op, steps] of Object.entries(r.phases))
      out.push(
        `  ${op.padEnd(29)}${Object.entries(steps)
          .map(([k, v]) => `${k} ${v.p50}/${v.p90}`)
          .join(', ')}`,
      );
  }
  const idleHead = IDLE_SETTLE_S > 0 ? `idle (2 s, ${IDLE_SETTLE_S + 2} s after a warm-up pod)` : 'idle';
  out.push(
    `daemon RSS (MiB): ${idleHead} / with pods (2 s after, ${SETTLE_S} s after) / after removing them`,
  );
  for (const r of results) {
    const mb = (kb: number): string => (kb / 1024).toFixed(0);
    const idle =
      r.rss.idleSettled !== undefined ? `${mb(r.rss.idle)}, ${mb(r.rss.idleSettled)}` : mb(r.rss.idle);
    out.push(
      `  ${r.name.padEnd(12)} ${idle} / ${mb(r.rss.withPods)}, ${mb(r.rss.withPodsSettled)} / ` +
        `${mb(r.rss.after)}` +
        `   (${PODS} running pods: ${r.rss.monitors} monitors, ${mb(r.rss.monitorsKb)} MiB RSS in all)`,
    );
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  // every target is up for the whole run (the others idle while one is measured), so that the
  // image reads can be timed side by side
  const targets: Target[] = [];
  try {
    for (const name of TARGETS)
      targets.push(name === 'containerd' ? await containerdTarget() : await berthTarget());
    const runs: Lifecycle[] = [];
    let floor: FloorTimings | undefined;
    for (const [i, t] of targets.entries()) {
      runs.push(await lifecycles(t));
      // between the first target's runs and the next's, on the same quiet machine
      if (i === 0 && FLOOR_RUNS > 0) floor = await measureRuntimeFloor(FLOOR_RUNS);
    }
    const { reads, readsAfterS } = await imageReads(targets);
    const results: Result[] = [];
    for (const [i, t] of targets.entries()) {
      const { idle, idleSettled, ...run } = runs[i]!;
      const rss = await memory(t);
      results.push({
        ...run,
        reads: reads[i]!,
        readsAfterS: readsAfterS[i]!,
        rss: { idle, idleSettled, ...rss },
      });
    }
    process.stdout.write(`${render(results, floor)}\n`);
  } finally {
    for (const t of targets) await t.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err)}\n`);
  process.exit(1);
});
