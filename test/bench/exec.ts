// ExecSync cost on an idle node: one running busybox container, then N exec probes
// (`sh -c 'exit 0'`, timeout 1 s, one after the other), timed by this client, with the CPU they
// cost the runtime: the daemon's own CPU plus everything it reaped (runc or berth-exec and the
// command), plus, for containerd, its shims (which run runc exec and reap the command).
//
// Run (needs root):
//   npm run bench -- exec                  Berth with berth-exec, Berth with runc exec, containerd
//   BENCH_EXECS=N (200)                     execs per target
//   BENCH_TARGETS=berth,berth-runc,containerd   which columns (containerd needs Debian's containerd)
import * as path from 'node:path';
import { call, type CriClients } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { startHarness } from '../lab/harness';
import { startLabContainerd } from '../lab/containerd-anchor';
import { procStat, TICKS } from '../lab/proc';
import { pctNearestRank as pct } from '../lab/percentiles';

const EXECS = Number(process.env.BENCH_EXECS ?? 200);
const TARGETS = (process.env.BENCH_TARGETS ?? 'berth,berth-runc,containerd').split(',').filter(Boolean);
const WARMUP = 5;

interface Target {
  clients: CriClients;
  busybox: string;
  logDir: string;
  daemonPid: number;
  /** pids whose CPU (own + reaped children) also counts: containerd's shims */
  helpers(): number[];
  cleanup(): Promise<void>;
}

interface Figures {
  target: string;
  execs: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  cpuMsPerExec: number;
  daemonMsPerExec: number;
}

function cpuTicks(pid: number, withChildren = true): number {
  const st = procStat(pid);
  return st ? st.own + (withChildren ? st.children : 0) : 0;
}

async function berthTarget(nativeExec: boolean): Promise<Target> {
  const h = await startHarness({
    bridge: 'berthxb0',
    subnet: '10.235.0.0/24',
    prefix: 'xb',
    config: { log_level: 'warn', runtime: { native_exec: nativeExec } },
  });
  return {
    clients: h.d.clients,
    busybox: h.busybox,
    logDir: h.logDir,
    daemonPid: h.d.proc.pid!,
    helpers: () => [],
    cleanup: () => h.cleanup(),
  };
}

async function containerdTarget(): Promise<Target> {
  const c = await startLabContainerd({ bridge: 'berthxb1', subnet: '10.234.0.0/24' });
  return {
    clients: c.clients,
    busybox: c.busybox,
    logDir: c.logDir,
    daemonPid: c.pid,
    helpers: () => c.shimPids(),
    cleanup: () => c.cleanup(),
  };
}

async function measure(name: string, t: Target): Promise<Figures> {
  const uid = `uid-xb-${process.pid}-${name}`;
  const pod: PodSandboxConfig = {
    metadata: { name: `xb-${name}`, namespace: 'bench', uid, attempt: 0 },
    hostname: 'xb',
    log_directory: path.join(t.logDir, name),
    linux: {},
  };
  const r = t.clients.runtime;
  const { pod_sandbox_id: podId } = await call(r, 'RunPodSandbox', { config: pod }, 120_000);
  try {
    const cfg: ContainerConfig = {
      metadata: { name: 'app', attempt: 0 },
      image: { image: t.busybox },
      command: ['sleep', '86400'],
      log_path: 'app.log',
      linux: {},
    };
    const { container_id: id } = await call(
      r,
      'CreateContainer',
      { pod_sandbox_id: podId, config: cfg, sandbox_config: pod },
      120_000,
    );
    await call(r, 'StartContainer', { container_id: id }, 120_000);
    const exec = (): Promise<unknown> =>
      call(r, 'ExecSync', { container_id: id, cmd: ['sh', '-c', 'exit 0'], timeout: 1 }, 60_000);
    for (let i = 0; i < WARMUP; i++) await exec();
    const helpers = t.helpers();
    const before = cpuTicks(t.daemonPid) + helpers.reduce((a, p) => a + cpuTicks(p), 0);
    const ownBefore = cpuTicks(t.daemonPid, false);
    const ms: number[] = [];
    let errors = 0;
    for (let i = 0; i < EXECS; i++) {
      const s = performance.now();
      try {
        const res = (await exec()) as { exit_code: number };
        if (res.exit_code !== 0) errors++;
      } catch {
        errors++;
      }
      ms.push(performance.now() - s);
    }
    const after = cpuTicks(t.daemonPid) + helpers.reduce((a, p) => a + cpuTicks(p), 0);
    const ownAfter = cpuTicks(t.daemonPid, false);
    return {
      target: name,
      execs: EXECS,
      errors,
      p50: pct(ms, 50),
      p90: pct(ms, 90),
      p99: pct(ms, 99),
      cpuMsPerExec: ((after - before) * (1000 / TICKS)) / EXECS,
      daemonMsPerExec: ((ownAfter - ownBefore) * (1000 / TICKS)) / EXECS,
    };
  } finally {
    await call(r, 'StopPodSandbox', { pod_sandbox_id: podId }, 120_000).catch(() => undefined);
    await call(r, 'RemovePodSandbox', { pod_sandbox_id: podId }, 120_000).catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const results: Figures[] = [];
  for (const name of TARGETS) {
    const t = name === 'containerd' ? await containerdTarget() : await berthTarget(name !== 'berth-runc');
    try {
      results.push(await measure(name, t));
    } finally {
      await t.cleanup();
    }
  }
  const base = results.find((x) => x.target === 'containerd');
  const row = (f: Figures): string =>
    [
      f.target.padEnd(12),
      String(f.execs).padStart(5),
      String(f.errors).padStart(6),
      ...[f.p50, f.p90, f.p99].map((v) => v.toFixed(1).padStart(7)),
      f.cpuMsPerExec.toFixed(2).padStart(10),
      f.daemonMsPerExec.toFixed(2).padStart(10),
      base ? `${(f.cpuMsPerExec / base.cpuMsPerExec).toFixed(2)}×`.padStart(8) : '',
    ].join(' ');
  console.log(
    `ExecSync sh -c 'exit 0', sequential, idle node\n${[
      'target'.padEnd(12),
      'execs'.padStart(5),
      'errors'.padStart(6),
      'p50 ms'.padStart(7),
      'p90 ms'.padStart(7),
      'p99 ms'.padStart(7),
      'CPU ms/ex'.padStart(10),
      'daemon ms'.padStart(10),
      'vs cd'.padStart(8),
    ].join(' ')}`,
  );
  for (const f of results) console.log(row(f));
  console.log(
    'CPU ms/ex: daemon own + reaped children (+ shims for containerd) per exec; daemon ms: the daemon process alone',
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
