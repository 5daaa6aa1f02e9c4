// Pull benchmark: an image of a few hundred MB from a local registry (Debian's docker-registry),
// pulled through CRI PullImage into a fresh store, by Berth and by Debian's containerd 1.6 in the
// same run. Each target pulls BENCH_PULL_RUNS times (default 3), each time into a fresh daemon with
// empty dirs (berthd: startBerthd's temp dirs; containerd: its own root, state, socket and CNI
// network, test/lab/containerd.ts), and the median is reported: wall time as the client sees it,
// compressed MB/s (layer blobs as pulled), unpacked MB/s (the layers' uncompressed tars) and the
// daemon's peak RSS (VmHWM of the berthd or containerd process; containerd unpacks in-process), and
// the CPU time the daemon spent on the pull (user + system, its reaped children included), which
// says more than the wall time when other work shares the machine. While each pull runs, a Version
// RPC goes out every 20 ms: its latencies (p50/p99/max over all runs) show how the daemon answers
// other calls while it pulls. The load average is printed.
//
// Images (BENCH_PULL_IMAGES, comma-separated, default `issue`):
//   issue  busybox + 4 gzip layers of ~50 MB of random (incompressible) bytes, as issue #15 measured
//   mixed  busybox + 4 layers of ~95 MB, 200 files each, half random and half text
//
// Run (needs root): npm run bench -- pull
//   BENCH_TARGETS=berth,containerd   which daemons (containerd needs /usr/bin/containerd);
//                                    berth-main: Berth unpacking on its main thread (unpack_workers 0)
//   BENCH_PULL_RUNS=N (3)            pulls per target and image
//   BENCH_BERTH_CONFIG='{"image":{"unpack_workers":2}}'   berthd config merged over the bench's
//   BERTHD_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"   profile berthd (test/lab/berthd.ts)
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { call, type CriClients } from '../../api/client';
import { startBerthd } from '../lab/berthd';
import { startContainerd } from '../lab/containerd';
import { busyboxLayer, pushImage, type PushedImage } from '../lab/images';
import { procStat, procStatusKb, TICKS } from '../lab/proc';
import { startRegistry, type LabRegistry } from '../lab/registry';
import { makeTar, type TarEntry } from '../lab/tar';
import { median, pct } from '../lab/percentiles';

const TARGETS = (process.env.BENCH_TARGETS ?? 'berth,containerd').split(',').filter(Boolean);
const IMAGES = (process.env.BENCH_PULL_IMAGES ?? 'issue').split(',').filter(Boolean);
const RUNS = Math.max(1, Number(process.env.BENCH_PULL_RUNS ?? 3));
/** containerd's CNI network (it needs one to start; no pod is made) */
const CD_NET = { bridge: 'berthpu0', subnet: '10.227.0.0/24' };

/** One file of `mb` MB of random bytes in its own dir (gzip cannot shrink it). */
async function randomLayer(i: number, mb: number): Promise<Buffer> {
  const entries: TarEntry[] = [
    { path: `data${i}/`, type: 'dir' },
    { path: `data${i}/blob.bin`, content: crypto.randomBytes(mb * 1024 * 1024) },
  ];
  return makeTar(entries);
}

/** A layer of many files: half random bytes (incompressible), half text (compressible). */
async function mixedLayer(i: number, mb: number): Promise<Buffer> {
  const entries: TarEntry[] = [{ path: `data${i}/`, type: 'dir' }];
  const files = 200;
  const per = Math.floor((mb * 1024 * 1024) / files);
  for (let f = 0; f < files; f++) {
    const content =
      f % 2 === 0
        ? crypto.randomBytes(per)
        : Buffer.from(`line ${f} of layer ${i}\n`.repeat(per / 20).slice(0, per));
    entries.push({ path: `data${i}/f${f}.bin`, content });
  }
  return makeTar(entries);
}

interface BenchImage {
  name: string;
  pushed: PushedImage;
  compressed: number;
  unpacked: number;
}

async function buildImage(reg: LabRegistry, name: string): Promise<BenchImage> {
  const make = name === 'mixed' ? (i: number) => mixedLayer(i, 95) : (i: number) => randomLayer(i, 50);
  if (name !== 'mixed' && name !== 'issue') throw new Error(`unknown image '${name}' (issue, mixed)`);
  const layers = [busyboxLayer(), ...(await Promise.all([0, 1, 2, 3].map(make)))];
  const pushed = await pushImage(reg, `bench/${name}`, 'v1', { layers, compression: 'gzip' });
  return {
    name,
    pushed,
    compressed: pushed.layers.reduce((n, l) => n + l.size, 0),
    unpacked: layers.reduce((n, l) => n + l.length, 0),
  };
}

interface Run {
  secs: number;
  /** Version RPCs answered during the pull: their latencies, ms */
  versionMs: number[];
  peakKb: number;
  /** CPU seconds (user + system) the daemon and the children it reaped spent on the pull */
  cpu: number;
}

/** utime + stime (+ reaped children's) of `pid`, in seconds. */
function cpuSecs(pid: number): number {
  const st = procStat(pid);
  return st ? (st.own + st.children) / TICKS : 0;
}

/** A fresh daemon: its pid, CRI clients, and how to remove it with everything it stored. */
interface Daemon {
  pid: number;
  clients: CriClients;
  cleanup(): Promise<void>;
}

async function startTarget(target: string, reg: LabRegistry): Promise<Daemon> {
  if (target === 'berth' || target === 'berth-main') {
    const extra = JSON.parse(process.env.BENCH_BERTH_CONFIG ?? '{}') as Record<string, unknown>;
    const d = await startBerthd({
      log_level: 'warn',
      ...extra,
      ...(target === 'berth-main'
        ? { image: { ...(extra.image as object | undefined), unpack_workers: 0 } }
        : {}),
    });
    return { pid: d.proc.pid!, clients: d.clients, cleanup: () => d.cleanup() };
  }
  if (target === 'containerd') {
    const c = await startContainerd({
      sandboxImage: `${reg.host}/pause:3.10`,
      insecureRegistries: [reg.host],
      ...CD_NET,
    });
    return { pid: c.pid, clients: c.clients, cleanup: () => c.stop() };
  }
  throw new Error(`unknown target '${target}' (berth, berth-main, containerd)`);
}

async function pullOnce(target: string, reg: LabRegistry, img: BenchImage): Promise<Run> {
  const d = await startTarget(target, reg);
  try {
    const cpu0 = cpuSecs(d.pid);
    const t0 = process.hrtime.bigint();
    let pulling = true;
    const pull = call(
      d.clients.image,
      'PullImage',
      { image: { image: img.pushed.reference } },
      600_000,
    ).finally(() => (pulling = false));
    const versionMs = await probeVersion(d.clients, () => pulling);
    await pull;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    return { secs, versionMs, peakKb: procStatusKb(d.pid, 'VmHWM'), cpu: cpuSecs(d.pid) - cpu0 };
  } finally {
    await d.cleanup();
  }
}

/**
 * How the daemon answers other RPCs while it pulls: a Version call every 20 ms (one at a time) until
 * `busy()` turns false, as kubelet's relists and probes would meet a pulling runtime.
 */
async function probeVersion(clients: CriClients, busy: () => boolean): Promise<number[]> {
  const out: number[] = [];
  while (busy()) {
    const t = process.hrtime.bigint();
    await call(clients.runtime, 'Version', { version: 'v1' }, 10_000);
    if (busy()) out.push(Number(process.hrtime.bigint() - t) / 1e6);
    await new Promise((r) => setTimeout(r, 20));
  }
  return out;
}

async function main(): Promise<void> {
  const reg = await startRegistry();
  try {
    process.stdout.write(`building and pushing ${IMAGES.join(', ')}...\n`);
    const load = (): string => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const images: BenchImage[] = [];
    for (const name of IMAGES) images.push(await buildImage(reg, name));
    const mb = (n: number): string => (n / 1e6).toFixed(1);
    for (const img of images) {
      console.log(
        `\nimage ${img.name}: ${img.pushed.layers.length} layers, ${mb(img.compressed)} MB compressed, ${mb(img.unpacked)} MB unpacked; median of ${RUNS} pulls, each into a fresh daemon`,
      );
      console.log(
        [
          'target'.padEnd(11),
          'pull ms'.padStart(8),
          'comp MB/s'.padStart(10),
          'unp MB/s'.padStart(9),
          'peak RSS MB'.padStart(12),
          'CPU s'.padStart(6),
          'Version p50/p99/max ms'.padStart(23),
          'runs (ms)'.padStart(10),
        ].join(' '),
      );
      const rows: { target: string; secs: number }[] = [];
      for (const target of TARGETS) {
        const runs: Run[] = [];
        for (let i = 0; i < RUNS; i++) runs.push(await pullOnce(target, reg, img));
        const secs = median(runs.map((r) => r.secs));
        const peak = median(runs.map((r) => r.peakKb));
        const cpu = median(runs.map((r) => r.cpu));
        const v = runs.flatMap((r) => r.versionMs);
        rows.push({ target, secs });
        console.log(
          [
            target.padEnd(11),
            (secs * 1000).toFixed(0).padStart(8),
            (img.compressed / 1e6 / secs).toFixed(1).padStart(10),
            (img.unpacked / 1e6 / secs).toFixed(1).padStart(9),
            (peak / 1024).toFixed(0).padStart(12),
            cpu.toFixed(2).padStart(6),
            `${pct(v, 50).toFixed(1)} / ${pct(v, 99).toFixed(1)} / ${Math.max(...v).toFixed(1)}`.padStart(23),
            `  ${runs.map((r) => (r.secs * 1000).toFixed(0)).join(', ')}`,
          ].join(' '),
        );
      }
      console.log(`load average ${load()} (${os.cpus().length} CPUs)`);
      const b = rows.find((r) => r.target === 'berth');
      const c = rows.find((r) => r.target === 'containerd');
      if (b && c)
        console.log(
          `berth throughput / containerd's: ${(c.secs / b.secs).toFixed(2)}× (containerd time / berth time)`,
        );
    }
  } finally {
    await reg.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err)}\n`);
  process.exit(1);
});
