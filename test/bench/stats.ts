// Stats benchmark: kubelet asks for every pod's and container's stats every 10 s. Starts PODS pods
// with one running container each (100 is too heavy for a 2-core VM; the cost is linear in the
// count, so the figures are extrapolated to 100), then times ListContainerStats,
// ListPodSandboxStats and ListPodSandboxMetrics: wall ms per call (p50/p95) and berthd's own CPU
// time per call (utime+stime from /proc/<pid>/stat), and the share of one core kubelet's 10 s
// cadence would cost at 100 pods.
// Run: npm run bench -- stats   (needs root)
import { call } from '../../api/client';
import type { TestDaemon } from '../lab/berthd';
import { startHarness } from '../lab/harness';
import { procStat, TICKS } from '../lab/proc';
import { pct } from '../lab/percentiles';

const PODS = Number(process.env.BENCH_STATS_PODS ?? 30);
const CALLS = 30;

/** utime + stime of a process in ms. */
function cpuMs(pid: number): number {
  return ((procStat(pid)?.own ?? 0) * 1000) / TICKS;
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
  const h = await startHarness({
    bridge: 'berthsx0',
    subnet: '10.254.0.0/24',
    prefix: 'statsbench',
    config: { log_level: 'warn' },
  });
  try {
    const d = h.d;
    const r = d.clients.runtime;
    for (let i = 0; i < PODS; i++) {
      const pod = h.podConfig();
      await h.startCtr(
        await h.runPod(pod),
        pod,
        h.ctrConfig('app', ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait']),
      );
    }
    const listed = await call(r, 'ListContainerStats', {});
    process.stdout.write(
      `${PODS} ready pods, ${listed.stats.length} running containers; ${CALLS} calls each\n`,
    );
    await measure(d, 'ListContainerStats', () => call(r, 'ListContainerStats', {}));
    await measure(d, 'ListPodSandboxStats', () => call(r, 'ListPodSandboxStats', {}));
    await measure(d, 'ListPodSandboxMetrics', () => call(r, 'ListPodSandboxMetrics', {}));
  } finally {
    await h.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err)}\n`);
  process.exit(1);
});
