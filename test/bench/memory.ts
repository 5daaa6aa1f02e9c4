// Memory after load: berthd's RSS idle, at the peak of a burst (50 pods created and removed, 10 at
// a time; a ~200 MB 5-layer pull; an image whose config is ~10 MB: 100 000 Env entries), and
// settled a minute later. Berth's goal: settled within 1.2x of idle.
// Run: npm run bench -- memory   (needs root). Extra node flags for berthd: BERTHD_NODE_ARGS;
// the environment (e.g. MALLOC_ARENA_MAX, BERTH_MEMORY_RELIEF=off) is passed on to berthd. Under
// BERTHD_WRAPPER (e.g. heaptrack) the figures are the wrapper's process, not berthd's.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { call } from '../../api/client';
import { KUBELET_NAMESPACES, startHarness, type Harness } from '../lab/harness';
import { busyboxLayer, pushImage } from '../lab/images';
import { procStatusKb } from '../lab/proc';
import { makeTar, type TarEntry } from '../lab/tar';

const PODS = 50;
const PARALLEL = 10;
const SETTLE_S = 60;
const GOAL = 1.2;

const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A layer of `mb` MB in 100 files, half random (incompressible), half text. */
async function layer(i: number, sizeMb: number): Promise<Buffer> {
  const entries: TarEntry[] = [{ path: `data${i}/`, type: 'dir' }];
  const files = 100;
  const per = Math.floor((sizeMb * 1024 * 1024) / files);
  for (let f = 0; f < files; f++) {
    const content =
      f % 2 === 0
        ? crypto.randomBytes(per)
        : Buffer.from(`line ${f} of layer ${i}\n`.repeat(per / 20).slice(0, per));
    entries.push({ path: `data${i}/f${f}.bin`, content });
  }
  return makeTar(entries);
}

async function podCycle(h: Harness): Promise<void> {
  // kubelet's namespace options for a pod without shareProcessNamespace (no infra container)
  const pod = h.podConfig({
    linux: { security_context: { namespace_options: KUBELET_NAMESPACES } },
  });
  const podId = await h.runPod(pod);
  const id = await h.startCtr(
    podId,
    pod,
    h.ctrConfig('app', ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait']),
  );
  await call(h.d.clients.runtime, 'StopContainer', { container_id: id, timeout: 10 });
  await call(h.d.clients.runtime, 'RemoveContainer', { container_id: id });
  await h.removePod(podId);
}

async function main(): Promise<void> {
  const h = await startHarness({
    bridge: 'berthgr0',
    subnet: '10.241.0.0/24',
    prefix: 'mem',
    config: { log_level: 'warn' },
  });
  try {
    const pid = h.d.proc.pid!;
    process.stdout.write('building and pushing the images...\n');
    const big = await pushImage(h.reg, 'bench/big', 'v1', {
      layers: [busyboxLayer(), ...(await Promise.all([0, 1, 2, 3].map((i) => layer(i, 100))))],
      compression: 'gzip',
    });
    const env = Array.from({ length: 100_000 }, (_, i) => `VAR_${i}=${'v'.repeat(80)}`);
    const fat = await pushImage(h.reg, 'bench/fatconfig', 'v1', {
      layers: [busyboxLayer()],
      config: { Env: env },
    });

    // warm-up: one pod through its whole life, then idle
    await podCycle(h);
    await sleep(10_000);
    const idle = procStatusKb(pid, 'VmRSS');

    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM
    let sampled = 0;
    const sampler = setInterval(() => (sampled = Math.max(sampled, procStatusKb(pid, 'VmRSS'))), 100);
    const t0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < PODS) {
          next++;
          await podCycle(h);
        }
      }),
    );
    await call(h.d.clients.image, 'PullImage', { image: { image: big.reference } });
    let fatResult = 'pulled';
    await call(h.d.clients.image, 'PullImage', { image: { image: fat.reference } }).catch((err: Error) => {
      fatResult = `refused (${err.message.slice(0, 120)})`;
    });
    clearInterval(sampler);
    const burstS = (Date.now() - t0) / 1000;
    const peak = Math.max(sampled, procStatusKb(pid, 'VmHWM'));
    const after = procStatusKb(pid, 'VmRSS');

    const curve: string[] = [];
    for (let s = 1; s <= SETTLE_S; s++) {
      await sleep(1000);
      if (s % 10 === 0) curve.push(`${s}s ${mb(procStatusKb(pid, 'VmRSS'))}`);
    }
    const settled = procStatusKb(pid, 'VmRSS');
    const ratio = settled / idle;
    process.stdout.write(
      [
        `burst: ${PODS} pods (${PARALLEL} at a time), ${big.layers.length}-layer ${(
          big.layers.reduce((n, l) => n + l.size, 0) / 1e6
        ).toFixed(
          0,
        )} MB pull, ${(fat.config.length / 1e6).toFixed(1)} MB config (${fatResult}) in ${burstS.toFixed(1)} s`,
        `berthd RSS idle ${mb(idle)}, peak ${mb(peak)}, right after ${mb(after)}, settled ${mb(settled)} after ${SETTLE_S} s`,
        `settling: ${curve.join(', ')}`,
        `settled/idle ${ratio.toFixed(2)} (goal <= ${GOAL}): ${ratio <= GOAL ? 'OK' : 'ABOVE GOAL'}`,
      ].join('\n') + '\n',
    );
    // with BERTHD_NODE_ARGS=--trace-gc: the V8 heap after berthd's last collection
    const gcs = h.d
      .output()
      .split('\n')
      .filter((l) => /Mark-Compact|Scavenge/.test(l));
    if (gcs.length) process.stdout.write(`last GC: ${gcs[gcs.length - 1].trim()}\n`);
  } finally {
    await h.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err)}\n`);
  process.exit(1);
});
