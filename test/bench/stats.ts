// Stats benchmark: kubelet asks for every pod's and container's stats every 10 s. Starts PODS pods
// with one running container each (100 is too heavy for a 2-core VM; the cost is linear in the
// count, so the figures are extrapolated to 100), then times ListContainerStats,
// ListPodSandboxStats and ListPodSandboxMetrics: wall ms per call (p50/p95) and berthd's own CPU
// time per call (utime+stime from /proc/<pid>/stat), and the share of one core kubelet's 10 s
// cadence would cost at 100 pods.
// Run: npm run bench -- stats   (needs root)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { call } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { startBerthd, type TestDaemon } from '../lab/berthd';
import { startRegistry } from '../lab/registry';
import { busyboxLayer, pushImage, pushPause } from '../lab/images';
import { makeLabNetwork } from '../lab/cni';

const PODS = Number(process.env.BENCH_STATS_PODS ?? 30);
const CALLS = 30;
const TICKS = 100; // USER_HZ

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** utime + stime of a process in ms. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS;
}

async function measure(d: TestDaemon, name: string, fn: () => Promise<unknown>): Promise<void> {
  const pid = d.proc.pid!;
  await fn(); // warm up (first call reads bundle specs for cgroup paths)
  const times: number[] = [];
  const c0 = cpuMs(pid);
  for (let i = 0; i < CALLS; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const cpuPerCall = (cpuMs(pid) - c0) / CALLS;
  const per100 = (cpuPerCall * 100) / PODS;
  process.stdout.write(
    `  ${name.padEnd(22)} p50 ${pct(times, 50).toFixed(1).padStart(6)} ms  p95 ${pct(times, 95)
      .toFixed(1)
      .padStart(6)} ms  berthd CPU ${cpuPerCall.toFixed(1).padStart(5)} ms/call` +
      `  → at 100 pods ~${per100.toFixed(0)} ms/call, ${(per100 / 100).toFixed(2)}% of a core every 10 s\n`,
  );
}

async function main(): Promise<void> {
  const reg = await startRegistry();
  const netw = makeLabNetwork('berthsx0', '10.254.0.0/24');
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-stats-'));
  let d: TestDaemon | undefined;
  const pods: string[] = [];
  try {
    await pushPause(reg);
    const image = (await pushImage(reg, 'library/busybox', 'latest', { layers: [busyboxLayer()] })).reference;
    d = await startBerthd({
      log_level: 'warn',
      pause_image: `${reg.host}/pause:3.10`,
      cni: { conf_dir: netw.confDir, bin_dirs: ['/usr/lib/cni'] },
    });
    await call(d.clients.image, 'PullImage', { image: { image } });
    const r = d.clients.runtime;
    for (let i = 0; i < PODS; i++) {
      const n = `statsbench${i}`;
      const pod: PodSandboxConfig = {
        metadata: { name: n, namespace: 'bench', uid: `${n}-${process.pid}`, attempt: 0 },
        hostname: n,
        log_directory: path.join(logDir, n),
        linux: {},
      };
      const ctr: ContainerConfig = {
        metadata: { name: 'app', attempt: 0 },
        image: { image },
        command: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'],
        log_path: 'app/0.log',
        linux: {},
      };
      const { pod_sandbox_id: podId } = await call(r, 'RunPodSandbox', { config: pod });
      pods.push(podId);
      const c = await call(r, 'CreateContainer', { pod_sandbox_id: podId, config: ctr, sandbox_config: pod });
      await call(r, 'StartContainer', { container_id: c.container_id });
    }
    const listed = await call(r, 'ListContainerStats', {});
    process.stdout.write(
      `${PODS} ready pods, ${listed.stats.length} running containers; ${CALLS} calls each\n`,
    );
    await measure(d, 'ListContainerStats', () => call(r, 'ListContainerStats', {}));
    await measure(d, 'ListPodSandboxStats', () => call(r, 'ListPodSandboxStats', {}));
    await measure(d, 'ListPodSandboxMetrics', () => call(r, 'ListPodSandboxMetrics', {}));
  } finally {
    if (d) {
      for (const podId of pods) {
        await call(d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
        await call(d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
      }
      await d.cleanup();
    }
    await reg.stop();
    netw.cleanup();
    fs.rmSync(logDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err)}\n`);
  process.exit(1);
});
