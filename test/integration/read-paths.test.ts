// The read RPCs kubelet calls every second or every few seconds answer from memory: ImageFsInfo
// and the writable-layer stats from sizes kept as things change and a background walker, the
// list and status RPCs from in-memory views that must match the records, across a restart and a
// kill -9. Status verbose carries the event loop's health.
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { call } from '../../api/client';
import type { ContainerStatus__Output, PodSandboxConfig } from '../../api/generated';
import { berthctl } from '../lab/berthd';
import { pushImage } from '../lab/images';
import { startHarness, type Harness } from '../lab/harness';
import { makeTarSync } from '../lab/tar';

let h: Harness;
const REFRESH_S = 2;

beforeAll(async () => {
  h = await startHarness({
    bridge: 'berthrp0',
    subnet: '10.243.0.0/24',
    prefix: 'rp',
    config: { stats: { disk_usage_refresh_seconds: REFRESH_S } },
  });
});

afterAll(async () => {
  await h?.cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const n = (v: { value: string } | null | undefined): number => Number(v?.value ?? NaN);

/** What GNU du finds under the image filesystem's dirs (content, layers and snapshots, records). */
function du(): { bytes: number; inodes: number } {
  const dirs = ['content', 'snapshots', 'images'].map((d) => path.join(h.d.root, d));
  const total = (args: string[]): number => {
    const r = spawnSync('du', ['-s', '-c', ...args, ...dirs], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`du failed: ${r.stderr}`);
    const line = r.stdout.trim().split('\n').pop()!;
    expect(line).toMatch(/\ttotal$/);
    return Number(line.split('\t')[0]);
  };
  return { bytes: total(['-B1']), inodes: total(['--inodes']) };
}

async function fsInfo(): Promise<{ bytes: number; inodes: number; mountpoint: string }> {
  const r = await call(h.d.clients.image, 'ImageFsInfo', {});
  const f = r.image_filesystems[0]!;
  return { bytes: n(f.used_bytes), inodes: n(f.inodes_used), mountpoint: f.fs_id?.mountpoint ?? '' };
}

/** ImageFsInfo agrees with du within 64 KiB (directory blocks) and a few inodes. */
function expectClose(got: { bytes: number; inodes: number }, want: { bytes: number; inodes: number }): void {
  expect(Math.abs(got.bytes - want.bytes)).toBeLessThanOrEqual(64 * 1024);
  expect(Math.abs(got.inodes - want.inodes)).toBeLessThanOrEqual(4);
}

/** Polls until ImageFsInfo agrees with du (the container part can be one walk behind). */
async function settledFsInfo(): Promise<{ bytes: number; inodes: number }> {
  const deadline = Date.now() + 6 * REFRESH_S * 1000;
  for (;;) {
    const [got, want] = [await fsInfo(), du()];
    const close = Math.abs(got.bytes - want.bytes) <= 64 * 1024 && Math.abs(got.inodes - want.inodes) <= 4;
    if (close || Date.now() > deadline) {
      expectClose(got, want);
      return got;
    }
    await sleep(200);
  }
}

test('ImageFsInfo grows with a pull and shrinks with RemoveImage, matching du', async () => {
  const base = await fsInfo();
  expect(base.mountpoint.startsWith('/')).toBe(true);
  expectClose(base, du());
  // 3 MB of random bytes (no compression helps) over two layers, and a few hundred small files
  const files = Array.from({ length: 300 }, (_, i) => ({ path: `many/f${i}`, content: `file ${i}\n` }));
  const img = await pushImage(h.reg, 'readpaths/big', 'v1', {
    layers: [
      makeTarSync([{ path: 'blob1', content: crypto.randomBytes(2 * 1024 * 1024) }]),
      makeTarSync([{ path: 'blob2', content: crypto.randomBytes(1024 * 1024) }, ...files]),
    ],
  });
  await call(h.d.clients.image, 'PullImage', { image: { image: img.reference } });
  // at once: layer and blob sizes are kept as they land, not found by a later walk
  const pulled = await fsInfo();
  // the unpacked layers (~3 MB; their compressed blobs are not kept: image.discard_unpacked_layers)
  expect(pulled.bytes - base.bytes).toBeGreaterThan(3 * 1024 * 1024);
  expect(pulled.inodes - base.inodes).toBeGreaterThan(300);
  expectClose(pulled, du());

  await call(h.d.clients.image, 'RemoveImage', { image: { image: img.reference } });
  const removed = await fsInfo();
  expect(pulled.bytes - removed.bytes).toBeGreaterThan(3 * 1024 * 1024);
  expectClose(removed, du());
  expectClose(removed, base);
});

test('a writable layer is measured right after create and its growth shows within the refresh interval', async () => {
  const pod = h.podConfig();
  const podId = await h.runPod(pod);
  const c = await call(h.d.clients.runtime, 'CreateContainer', {
    pod_sandbox_id: podId,
    config: h.ctrConfig('writer', ['sh', '-c', 'sleep 3600']),
    sandbox_config: pod,
  });
  const id = c.container_id;
  // measured at create: a created container's stats have the writable layer already
  const created = (await call(h.d.clients.runtime, 'ContainerStats', { container_id: id })).stats!;
  expect(n(created.writable_layer?.inodes_used)).toBeGreaterThanOrEqual(1);
  await call(h.d.clients.runtime, 'StartContainer', { container_id: id });
  const used0 = n(created.writable_layer?.used_bytes);
  expect((await h.exec(id, ['sh', '-c', 'head -c 3000000 /dev/urandom > /data'])).code).toBe(0);
  const t0 = Date.now();
  let used = used0;
  while (used - used0 < 3_000_000 && Date.now() - t0 < 4 * REFRESH_S * 1000) {
    await sleep(100);
    const s = await call(h.d.clients.runtime, 'ListContainerStats', { filter: { id } });
    used = n(s.stats[0]?.writable_layer?.used_bytes);
  }
  expect(used - used0).toBeGreaterThanOrEqual(3_000_000);
  expect(Date.now() - t0).toBeLessThan(3 * REFRESH_S * 1000);
  // ImageFsInfo counts the container's snapshot too (as the walker last saw it)
  await settledFsInfo();
  await h.removePod(podId);
  await settledFsInfo();
});

test('Status verbose carries the event loop health; berthctl info shows it', async () => {
  const st = await call(h.d.clients.runtime, 'Status', { verbose: true });
  const checkShape = (el: unknown): void => {
    const e = el as Record<string, unknown>;
    expect(Object.keys(e)).toEqual(['window_s', 'delay_ms', 'utilization', 'total']);
    expect(e.window_s).toBe(10);
    const delays = (d: unknown): void => {
      expect(Object.keys(d as object)).toEqual(['p50', 'p90', 'p99', 'max']);
      for (const v of Object.values(d as object)) {
        expect(typeof v).toBe('number');
        expect(v).toBeGreaterThanOrEqual(0);
      }
    };
    delays(e.delay_ms);
    const total = e.total as Record<string, unknown>;
    expect(Object.keys(total)).toEqual(['delay_ms', 'utilization']);
    delays(total.delay_ms);
    for (const u of [e.utilization, total.utilization]) {
      expect(typeof u).toBe('number');
      expect(u).toBeGreaterThan(0); // the daemon has done work since start
      expect(u).toBeLessThanOrEqual(1);
    }
  };
  checkShape(JSON.parse(st.info.eventLoop!));
  // not in the plain answer
  expect((await call(h.d.clients.runtime, 'Status', {})).info.eventLoop).toBeUndefined();
  const info = await berthctl(h.d, ['info']);
  expect(info.code).toBe(0);
  checkShape((JSON.parse(info.stdout) as { eventLoop: unknown }).eventLoop);
});

/** Everything kubelet reads through the list and status RPCs, in a comparable form. */
async function views(): Promise<Record<string, unknown>> {
  const r = h.d.clients.runtime;
  const im = h.d.clients.image;
  const byId = <T extends { id: string }>(xs: T[]): T[] => [...xs].sort((a, b) => a.id.localeCompare(b.id));
  const pods = byId((await call(r, 'ListPodSandbox', {})).items);
  const containers = byId((await call(r, 'ListContainers', {})).containers);
  const podStatus: Record<string, unknown> = {};
  for (const p of pods) {
    const s = await call(r, 'PodSandboxStatus', { pod_sandbox_id: p.id, verbose: true });
    podStatus[p.id] = {
      status: s.status,
      info: JSON.parse(s.info.info!) as unknown,
      containers: byId(s.containers_statuses),
    };
  }
  const ctrStatus: Record<string, unknown> = {};
  for (const c of containers) {
    const s = await call(r, 'ContainerStatus', { container_id: c.id, verbose: true });
    const info = JSON.parse(s.info.info!) as { runtimeSpec?: unknown };
    expect(info.runtimeSpec).toBeTruthy();
    ctrStatus[c.id] = { status: s.status, info };
  }
  const images = byId((await call(im, 'ListImages', {})).images);
  const imageStatus: Record<string, unknown> = {};
  for (const i of images) {
    for (const q of [i.id, ...i.repo_tags, ...i.repo_digests]) {
      const s = await call(im, 'ImageStatus', { image: { image: q }, verbose: true });
      imageStatus[q] = { image: s.image, info: JSON.parse(s.info.info!) as unknown };
    }
  }
  return { pods, containers, podStatus, ctrStatus, images, imageStatus };
}

test('list and status answers are the same after a restart and after kill -9', async () => {
  const r = h.d.clients.runtime;
  const labelled = (extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig =>
    h.podConfig({ labels: { app: 'rp', tier: 'x' }, annotations: { 'note/a': 'kept' }, ...extra });
  // pod A: a running container, one that exited with 3, one created and never started, one
  // removed; pod B: stopped, with a container that exited 0; pod C: removed altogether
  const podA = labelled();
  const a = await h.runPod(podA);
  const ctr = (name: string, cmd: string[]) =>
    h.ctrConfig(name, cmd, { labels: { role: name }, annotations: { 'io.example/x': name } });
  const running = await h.startCtr(a, podA, ctr('running', ['sleep', '3600']));
  const exited = await h.startCtr(a, podA, ctr('exited', ['sh', '-c', 'exit 3']));
  const created = (
    await call(r, 'CreateContainer', {
      pod_sandbox_id: a,
      config: ctr('created', ['sleep', '1']),
      sandbox_config: podA,
    })
  ).container_id;
  const gone = await h.startCtr(a, podA, ctr('gone', ['sleep', '3600']));
  await call(r, 'StopContainer', { container_id: gone, timeout: 0 });
  await call(r, 'RemoveContainer', { container_id: gone });
  const podB = labelled({ labels: { app: 'rp', tier: 'y' } });
  const b = await h.runPod(podB);
  const done = await h.startCtr(b, podB, ctr('done', ['true']));
  await h.waitExited(done);
  await call(r, 'StopPodSandbox', { pod_sandbox_id: b });
  const podC = labelled();
  const c = await h.runPod(podC);
  await h.removePod(c);
  expect((await h.waitExited(exited)).exit_code).toBe(3);

  const before = await views();
  const states = (v: Record<string, unknown>): Record<string, unknown> => {
    const st = v.ctrStatus as Record<string, { status: ContainerStatus__Output }>;
    return Object.fromEntries(
      Object.entries(st).map(([id, s]) => [id, [s.status.state, s.status.exit_code, s.status.reason]]),
    );
  };
  expect(states(before)).toEqual({
    [running]: ['CONTAINER_RUNNING', 0, ''],
    [exited]: ['CONTAINER_EXITED', 3, 'Error'],
    [created]: ['CONTAINER_CREATED', 0, ''],
    [done]: ['CONTAINER_EXITED', 0, 'Completed'],
  });
  const podStates = Object.fromEntries(
    (before.pods as { id: string; state: string }[]).map((p) => [p.id, p.state]),
  );
  expect(podStates).toEqual({ [a]: 'SANDBOX_READY', [b]: 'SANDBOX_NOTREADY' });
  const fsBefore = await settledFsInfo();

  expect(await h.d.stop()).toBe(0);
  await h.d.restart();
  expect(await views()).toEqual(before);
  // the background walker measures the snapshots again after the start
  expectClose(await settledFsInfo(), fsBefore);

  await h.d.kill9();
  await h.d.restart();
  expect(await views()).toEqual(before);
  expectClose(await settledFsInfo(), fsBefore);
  // and the daemon still acts on what it recovered
  expect((await h.exec(running, ['true'])).code).toBe(0);
  await h.removePod(a);
  await h.removePod(b);
});
