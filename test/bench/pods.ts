// Pod lifecycle benchmark: 50 pods with one container each (RunPodSandbox, CreateContainer,
// StartContainer, StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox), first one at a
// time, then 10 at a time. Prints p50/p95 per RPC, wall time, berthd's RSS, and the memory each
// running container costs (berthd's growth plus the conmon processes).
// Run: npm run bench -- pods   (needs root)
import * as fs from 'node:fs';
import { call } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { startHarness, type Harness } from '../lab/harness';

const PODS = 50;
const PARALLEL = 10;
const RUNNING = 20;

type Timings = Record<string, number[]>;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

function rssKb(pid: number, field = 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** conmon processes monitoring containers of this daemon (their command line names its state dir). */
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
  const t0 = process.hrtime.bigint();
  const r = await fn();
  (t[name] ??= []).push(Number(process.hrtime.bigint() - t0) / 1e6);
  return r;
}

/** A pod config and a container that exits promptly on SIGTERM, as a well-behaved app does. */
function configs(h: Harness): { pod: PodSandboxConfig; ctr: ContainerConfig } {
  return {
    pod: h.podConfig(),
    ctr: h.ctrConfig('app', ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait']),
  };
}

async function lifecycle(h: Harness, t: Timings): Promise<void> {
  const { pod, ctr } = configs(h);
  const r = h.d.clients.runtime;
  const { pod_sandbox_id: podId } = await timed(t, 'RunPodSandbox', () =>
    call(r, 'RunPodSandbox', { config: pod }),
  );
  const { container_id: id } = await timed(t, 'CreateContainer', () =>
    call(r, 'CreateContainer', { pod_sandbox_id: podId, config: ctr, sandbox_config: pod }),
  );
  await timed(t, 'StartContainer', () => call(r, 'StartContainer', { container_id: id }));
  await timed(t, 'StopContainer', () => call(r, 'StopContainer', { container_id: id, timeout: 10 }));
  await timed(t, 'RemoveContainer', () => call(r, 'RemoveContainer', { container_id: id }));
  await timed(t, 'StopPodSandbox', () => call(r, 'StopPodSandbox', { pod_sandbox_id: podId }));
  await timed(t, 'RemovePodSandbox', () => call(r, 'RemovePodSandbox', { pod_sandbox_id: podId }));
}

function report(title: string, t: Timings, wallMs: number): void {
  process.stdout.write(`${title}: ${PODS} pods in ${(wallMs / 1000).toFixed(2)} s\n`);
  for (const [name, xs] of Object.entries(t))
    process.stdout.write(
      `  ${name.padEnd(17)} p50 ${pct(xs, 50).toFixed(1).padStart(7)} ms   p95 ${pct(xs, 95).toFixed(1).padStart(7)} ms\n`,
    );
}

async function main(): Promise<void> {
  const h = await startHarness({
    bridge: 'berthbn0',
    subnet: '10.248.0.0/24',
    prefix: 'bench',
    config: { log_level: 'warn' },
  });
  try {
    const d = h.d;
    // the pause image is pulled before timing starts, as on a node that has run pods before
    await call(d.clients.image, 'PullImage', { image: { image: `${h.reg.host}/pause:3.10` } });
    const pid = d.proc.pid!;

    let t: Timings = {};
    let t0 = Date.now();
    for (let i = 0; i < PODS; i++) await lifecycle(h, t);
    report('sequential', t, Date.now() - t0);

    t = {};
    t0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < PODS) {
          next++;
          await lifecycle(h, t);
        }
      }),
    );
    report(`${PARALLEL}-way parallel`, t, Date.now() - t0);

    // memory per running container
    const base = rssKb(pid);
    for (let i = 0; i < RUNNING; i++) {
      const { pod, ctr } = configs(h);
      await h.startCtr(await h.runPod(pod), pod, ctr);
    }
    const grown = rssKb(pid) - base;
    const conmons = conmonPids(d.state);
    const conmonKb = conmons.reduce((n, p) => n + rssKb(p), 0);
    process.stdout.write(
      [
        `berthd RSS: ${(rssKb(pid) / 1024).toFixed(0)} MB now, peak ${(rssKb(pid, 'VmHWM') / 1024).toFixed(0)} MB`,
        `${RUNNING} running pods (infra + 1 container each): ${conmons.length} conmon processes, ` +
          `${(conmonKb / conmons.length).toFixed(0)} kB RSS each`,
        `per running container (berthd growth + its conmon, infra conmon counted separately): ` +
          `${(grown / (2 * RUNNING) + conmonKb / conmons.length).toFixed(0)} kB`,
      ].join('\n') + '\n',
    );
  } finally {
    await h.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err)}\n`);
  process.exit(1);
});
