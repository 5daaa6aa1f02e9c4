// cri-api main-line RPCs and fields end to end (issue #11): the Stream* list RPCs against their
// List twins with enough data to need several messages, and stop signals (ContainerConfig.stop_signal
// over the image's StopSignal, reported by ContainerStatus, used by StopContainer and StopPodSandbox)
// observed by traps in real containers. Real berthd, runc, conmon, registry and CNI bridge.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { call } from '../../api/client';
import type { PodSandboxConfig } from '../../api/generated';
import { startHarness, type Harness } from '../lab/harness';
import { berthctl } from '../lab/berthd';
import { busyboxLayer, pushImage } from '../lab/images';
import { messageSizer, STREAM_BATCH_BYTES } from '../../internal/server/stream_list';

let h: Harness;
let outDir: string;

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthcri0', subnet: '10.233.0.0/24', prefix: 'cri' });
  outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cri-main-'));
}, 120_000);

afterAll(async () => {
  await h?.cleanup();
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

/** Reads a server stream to its end: the messages, in order. */
function collect<T>(stream: grpc.ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = [];
    stream.on('data', (m: T) => got.push(m));
    stream.on('error', reject);
    stream.on('end', () => resolve(got));
  });
}

describe('streaming lists', () => {
  // 600 KiB of annotation per pod and per container: two pods do not fit one 1 MiB message
  const big = 'x'.repeat(600 * 1024);
  const pods: string[] = [];
  const ctrs: string[] = [];
  let small = '';

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      const cfg = h.podConfig({ labels: { group: 'big' }, annotations: { big } });
      const id = await h.runPod(cfg);
      pods.push(id);
      ctrs.push(
        await h.startCtr(
          id,
          cfg,
          h.ctrConfig('sleeper', ['sleep', '3600'], { labels: { group: 'big' }, annotations: { big } }),
        ),
      );
    }
    const cfg: PodSandboxConfig = h.podConfig({ labels: { group: 'small' } });
    small = await h.runPod(cfg);
    pods.push(small);
    ctrs.push(
      await h.startCtr(small, cfg, h.ctrConfig('tiny', ['sleep', '3600'], { labels: { group: 'small' } })),
    );
  }, 180_000);

  afterAll(async () => {
    for (const id of pods) await h.removePod(id).catch(() => undefined);
  }, 120_000);

  /** Checks each message's encoded size: within the batch budget unless it holds one item. */
  function checkSizes<T>(msgs: T[], type: string, items: (m: T) => unknown[]): void {
    const size = messageSizer(type);
    for (const m of msgs) {
      const n = size(m);
      expect(n).toBeLessThan(4 * 1024 * 1024);
      if (items(m).length > 1) expect(n).toBeLessThanOrEqual(STREAM_BATCH_BYTES);
    }
  }

  test('StreamPodSandboxes: the same pods as ListPodSandbox, in several messages, filters honoured', async () => {
    const rt = h.d.clients.runtime;
    const listed = (await call(rt, 'ListPodSandbox', {})).items.map((p) => p.id).sort();
    const msgs = await collect(rt.StreamPodSandboxes({}));
    expect(msgs.length).toBeGreaterThanOrEqual(3);
    checkSizes(msgs, 'StreamPodSandboxesResponse', (m) => m.pod_sandboxes);
    expect(msgs.flatMap((m) => m.pod_sandboxes.map((p) => p.id)).sort()).toEqual(listed);
    expect(listed).toEqual(expect.arrayContaining(pods));
    expect(msgs.flatMap((m) => m.pod_sandboxes).find((p) => p.id === pods[0])?.annotations.big).toBe(big);

    const filtered = await collect(rt.StreamPodSandboxes({ filter: { label_selector: { group: 'small' } } }));
    expect(filtered.flatMap((m) => m.pod_sandboxes.map((p) => p.id))).toEqual([small]);
    const byId = await collect(rt.StreamPodSandboxes({ filter: { id: pods[1] } }));
    expect(byId.flatMap((m) => m.pod_sandboxes.map((p) => p.id))).toEqual([pods[1]]);
  });

  test('StreamContainers: the same containers as ListContainers, in several messages, filters honoured', async () => {
    const rt = h.d.clients.runtime;
    const listed = (await call(rt, 'ListContainers', {})).containers.map((c) => c.id).sort();
    const msgs = await collect(rt.StreamContainers({}));
    expect(msgs.length).toBeGreaterThanOrEqual(3);
    checkSizes(msgs, 'StreamContainersResponse', (m) => m.containers);
    expect(msgs.flatMap((m) => m.containers.map((c) => c.id)).sort()).toEqual(listed);
    expect(listed).toEqual(expect.arrayContaining(ctrs));
    const inPod = await collect(rt.StreamContainers({ filter: { pod_sandbox_id: pods[2] } }));
    expect(inPod.flatMap((m) => m.containers.map((c) => c.id))).toEqual([ctrs[2]]);
    const running = await collect(
      rt.StreamContainers({
        filter: { state: { state: 'CONTAINER_RUNNING' }, label_selector: { group: 'small' } },
      }),
    );
    expect(running.flatMap((m) => m.containers.map((c) => c.id))).toEqual([ctrs[3]]);
  });

  test('StreamContainerStats and StreamPodSandboxStats: the List twins’ items, in several messages', async () => {
    const rt = h.d.clients.runtime;
    const cListed = (await call(rt, 'ListContainerStats', {})).stats.map((s) => s.attributes?.id).sort();
    const cMsgs = await collect(rt.StreamContainerStats({}));
    expect(cMsgs.length).toBeGreaterThanOrEqual(3);
    checkSizes(cMsgs, 'StreamContainerStatsResponse', (m) => m.container_stats);
    expect(cMsgs.flatMap((m) => m.container_stats.map((s) => s.attributes?.id)).sort()).toEqual(cListed);
    expect(cListed).toEqual(expect.arrayContaining(ctrs));
    const cSmall = await collect(rt.StreamContainerStats({ filter: { label_selector: { group: 'small' } } }));
    expect(cSmall.flatMap((m) => m.container_stats.map((s) => s.attributes?.id))).toEqual([ctrs[3]]);

    const pListed = (await call(rt, 'ListPodSandboxStats', {})).stats.map((s) => s.attributes?.id).sort();
    const pMsgs = await collect(rt.StreamPodSandboxStats({}));
    expect(pMsgs.length).toBeGreaterThanOrEqual(3);
    checkSizes(pMsgs, 'StreamPodSandboxStatsResponse', (m) => m.pod_sandbox_stats);
    expect(pMsgs.flatMap((m) => m.pod_sandbox_stats.map((s) => s.attributes?.id)).sort()).toEqual(pListed);
    const pOne = await collect(rt.StreamPodSandboxStats({ filter: { id: pods[0] } }));
    expect(pOne.flatMap((m) => m.pod_sandbox_stats.map((s) => s.attributes?.id))).toEqual([pods[0]]);
  });

  test('StreamPodSandboxMetrics and StreamImages: the List twins’ items', async () => {
    const rt = h.d.clients.runtime;
    const mListed = (await call(rt, 'ListPodSandboxMetrics', {})).pod_metrics
      .map((m) => m.pod_sandbox_id)
      .sort();
    const mMsgs = await collect(rt.StreamPodSandboxMetrics({}));
    expect(mMsgs.flatMap((m) => m.pod_sandbox_metrics.map((x) => x.pod_sandbox_id)).sort()).toEqual(mListed);
    expect(mListed).toEqual(expect.arrayContaining(pods));

    const im = h.d.clients.image;
    const iListed = (await call(im, 'ListImages', {})).images.map((i) => i.id).sort();
    const iMsgs = await collect(im.StreamImages({}));
    expect(iMsgs.flatMap((m) => m.images.map((i) => i.id)).sort()).toEqual(iListed);
    expect(iListed.length).toBeGreaterThanOrEqual(2);
    const one = await collect(im.StreamImages({ filter: { image: { image: h.busybox } } }));
    expect(one.flatMap((m) => m.images.flatMap((i) => i.repo_tags))).toContain(h.busybox);
    expect(one.flatMap((m) => m.images)).toHaveLength(1);
  });

  test('a client that cancels after the first message gets CANCELLED; the daemon carries on', async () => {
    const rt = h.d.clients.runtime;
    const stream = rt.StreamPodSandboxes({});
    const code = await new Promise<number>((resolve) => {
      stream.once('data', () => stream.cancel());
      stream.on('error', (e: grpc.ServiceError) => resolve(e.code));
      stream.on('end', () => resolve(-1));
    });
    expect(code).toBe(1); // CANCELLED
    expect((await call(rt, 'Version', { version: 'v1' })).runtime_name).toBe('berth');
    expect((await collect(rt.StreamPodSandboxes({}))).length).toBeGreaterThanOrEqual(3);
  });
});

describe('stop signals', () => {
  let image: string;
  // traps USR1 and USR2 (writing which one came to /out/<name>) and ignores TERM as PID 1 does
  const script = (name: string): string[] => [
    'sh',
    '-c',
    `trap 'echo USR1 > /out/${name}; exit 0' USR1; trap 'echo USR2 > /out/${name}; exit 0' USR2; ` +
      `touch /out/${name}.ready; while :; do sleep 0.1; done`,
  ];
  const mounts = () => [{ container_path: '/out', host_path: outDir }];

  beforeAll(async () => {
    image = (
      await pushImage(h.reg, 'library/stopsig', 'v1', {
        layers: [busyboxLayer()],
        config: { Cmd: ['sh'], StopSignal: 'SIGUSR2' },
      })
    ).reference;
    await call(h.d.clients.image, 'PullImage', { image: { image } });
  }, 60_000);

  async function waitReady(name: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!fs.existsSync(path.join(outDir, `${name}.ready`))) {
      if (Date.now() > deadline) throw new Error(`${name} never got ready`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function status(id: string) {
    return (await call(h.d.clients.runtime, 'ContainerStatus', { container_id: id })).status!;
  }

  test("StopContainer sends the image's StopSignal, or ContainerConfig.stop_signal over it; ContainerStatus reports it", async () => {
    const rt = h.d.clients.runtime;
    const cfg = h.podConfig();
    const pod = await h.runPod(cfg);
    try {
      const fromImage = await h.startCtr(
        pod,
        cfg,
        h.ctrConfig('fromimage', script('fromimage'), { image: { image }, mounts: mounts() }),
      );
      const override = await h.startCtr(
        pod,
        cfg,
        h.ctrConfig('override', script('override'), {
          image: { image },
          mounts: mounts(),
          stop_signal: 'SIGNAL_SIGUSR1',
        }),
      );
      const plain = await h.startCtr(pod, cfg, h.ctrConfig('plain', ['sleep', '3600']));
      expect((await status(fromImage)).stop_signal).toBe('SIGNAL_SIGUSR2');
      expect((await status(override)).stop_signal).toBe('SIGNAL_SIGUSR1');
      expect((await status(plain)).stop_signal).toBe('SIGNAL_SIGTERM');

      for (const [id, name, want] of [
        [fromImage, 'fromimage', 'USR2'],
        [override, 'override', 'USR1'],
      ]) {
        await waitReady(name);
        // a generous timeout: had the wrong signal been sent, the trap would not run and the
        // container would be SIGKILLed (exit 137) when it ran out
        await call(rt, 'StopContainer', { container_id: id, timeout: 30 });
        expect(fs.readFileSync(path.join(outDir, name), 'utf8').trim()).toBe(want);
        const st = await status(id);
        expect(st.state).toBe('CONTAINER_EXITED');
        expect(st.exit_code).toBe(0);
        expect(st.stop_signal).toBe(want === 'USR1' ? 'SIGNAL_SIGUSR1' : 'SIGNAL_SIGUSR2');
      }
    } finally {
      await h.removePod(pod);
    }
  });

  test('StopPodSandbox sends each running container its stop signal before killing it', async () => {
    const cfg = h.podConfig();
    const pod = await h.runPod(cfg);
    try {
      const id = await h.startCtr(
        pod,
        cfg,
        h.ctrConfig('podstop', script('podstop'), { mounts: mounts(), stop_signal: 'SIGNAL_SIGUSR1' }),
      );
      await waitReady('podstop');
      await call(h.d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: pod });
      expect(fs.readFileSync(path.join(outDir, 'podstop'), 'utf8').trim()).toBe('USR1');
      expect((await status(id)).exit_code).toBe(0);
    } finally {
      await h.removePod(pod);
    }
  });

  test('an unknown stop_signal value is INVALID_ARGUMENT', async () => {
    const cfg = h.podConfig();
    const pod = await h.runPod(cfg);
    try {
      await expect(
        call(h.d.clients.runtime, 'CreateContainer', {
          pod_sandbox_id: pod,
          config: h.ctrConfig('bad', ['true'], { stop_signal: 99 as never }),
          sandbox_config: cfg,
        }),
      ).rejects.toMatchObject({ code: 3 });
    } finally {
      await h.removePod(pod);
    }
  });
});

describe('I/O and PSI stats', () => {
  /** the container's directory in a cgroup hierarchy (cgroupfs driver: .../berth-<id> somewhere below) */
  function cgroupDir(hierarchy: string, id: string): string | undefined {
    const walk = (dir: string, depth: number): string | undefined => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return undefined;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        // the container's own cgroup, not its conmon's leaf beside it (berth-conmon-<id>)
        if (e.name === `berth-${id}` || e.name === `berth-${id}.scope`) return path.join(dir, e.name);
        if (depth > 0) {
          const found = walk(path.join(dir, e.name), depth - 1);
          if (found) return found;
        }
      }
      return undefined;
    };
    return walk(hierarchy, 3);
  }

  const metric = (
    ms: { name: string; label_values: string[]; value: { value: string } | null }[],
    name: string,
  ) => ms.filter((m) => m.name === name).reduce((a, m) => a + Number(m.value?.value ?? 0), 0);

  test('block I/O grows after a container writes; PSI is reported where cgroup v2 gives it', async () => {
    const rt = h.d.clients.runtime;
    const cfg = h.podConfig();
    const pod = await h.runPod(cfg);
    const v1blkio = fs.existsSync('/sys/fs/cgroup/blkio/cgroup.procs');
    let rule: string | undefined;
    try {
      const id = await h.startCtr(pod, cfg, h.ctrConfig('writer', ['sleep', '3600']));
      if (v1blkio) {
        // This kernel's cgroup v1 blkio.throttle.* counters account only bios of cgroups that have a
        // throttle rule on the device (observed: "Total 0" without one), so the test gives the
        // container's cgroup a rule that limits nothing (1 TiB/s) on the disk under its rootfs.
        const dir = cgroupDir('/sys/fs/cgroup/blkio', id);
        expect(dir).toBeDefined();
        const dev = fs.statSync(h.d.root).dev;
        const major = Math.floor(dev / 256) & 0xfff;
        const minor = (dev & 0xff) | ((Math.floor(dev / 4096) & ~0xff) >>> 0);
        rule = path.join(dir!, 'blkio.throttle.write_bps_device');
        fs.writeFileSync(rule, `${major}:${minor} 1099511627776`);
      }
      const before = (await call(rt, 'ListPodSandboxMetrics', {})).pod_metrics
        .find((p) => p.pod_sandbox_id === pod)!
        .container_metrics.find((c) => c.container_id === id)!.metrics;
      const w0 = metric(before, 'container_fs_writes_bytes_total');
      const r = await h.exec(
        id,
        ['dd', 'if=/dev/zero', 'of=/written', 'bs=1M', 'count=8', 'oflag=direct'],
        60,
      );
      expect(r.code).toBe(0);
      const after = (await call(rt, 'ListPodSandboxMetrics', {})).pod_metrics
        .find((p) => p.pod_sandbox_id === pod)!
        .container_metrics.find((c) => c.container_id === id)!.metrics;
      const w1 = metric(after, 'container_fs_writes_bytes_total');
      expect(w1 - w0).toBeGreaterThanOrEqual(8 * 1024 * 1024);
      expect(metric(after, 'container_fs_writes_total')).toBeGreaterThan(
        metric(before, 'container_fs_writes_total'),
      );
      const dev = after.find((m) => m.name === 'container_fs_writes_bytes_total')!.label_values;
      expect(dev[dev.length - 1]).toMatch(/^\/dev\/|^\d+:\d+$/);

      const names = (await call(rt, 'ListMetricDescriptors', {})).descriptors.map((d) => d.name);
      expect(names).toEqual(
        expect.arrayContaining([
          'container_fs_writes_bytes_total',
          'container_blkio_device_usage_total',
          'container_pressure_io_stalled_seconds_total',
          'container_pressure_cpu_waiting_seconds_total',
        ]),
      );

      const st = (await call(rt, 'ContainerStats', { container_id: id })).stats!;
      expect(BigInt(st.io!.timestamp)).toBeGreaterThan(0n);
      const ps = (await call(rt, 'PodSandboxStats', { pod_sandbox_id: pod })).stats!;
      const v2 = cgroupDir('/sys/fs/cgroup/unified', id) ?? cgroupDir('/sys/fs/cgroup', id);
      if (v2 && fs.existsSync(path.join(v2, 'cpu.pressure'))) {
        // the kernel's figure for this cgroup, read back through the CRI
        const kernelTotal = BigInt(
          /some .*total=(\d+)/.exec(fs.readFileSync(path.join(v2, 'io.pressure'), 'utf8'))![1],
        );
        expect(st.cpu?.psi?.Some).toBeTruthy();
        expect(st.memory?.psi?.Some).toBeTruthy();
        expect(BigInt(st.io!.psi!.Some!.Total)).toBeLessThanOrEqual(kernelTotal);
        expect(st.io!.psi!.Full).toBeTruthy();
        expect(metric(after, 'container_pressure_cpu_waiting_seconds_total')).toBeGreaterThanOrEqual(0);
        expect(after.some((m) => m.name === 'container_pressure_io_waiting_seconds_total')).toBe(true);
      } else {
        expect(st.cpu?.psi ?? null).toBeNull();
        expect(st.io?.psi ?? null).toBeNull();
      }
      // the pod (no cgroup_parent: the sum of its containers) has I/O but no PSI (stalls do not add up)
      expect(ps.linux?.io?.timestamp).toBeTruthy();
      expect(ps.linux?.io?.psi ?? null).toBeNull();
      const streamed = await collect(rt.StreamContainerStats({ filter: { id } }));
      expect(streamed.flatMap((m) => m.container_stats)[0].io?.timestamp).toBeTruthy();
    } finally {
      await h.removePod(pod);
    }
  });
});

describe('sharpened image semantics (cri-api main comments)', () => {
  test('Image.id, Container.image_id, ContainerStatus.image_id and PullImageResponse.image_ref are one value', async () => {
    const rt = h.d.clients.runtime;
    const pulled = await call(h.d.clients.image, 'PullImage', { image: { image: h.busybox } });
    const status = (await call(h.d.clients.image, 'ImageStatus', { image: { image: h.busybox } })).image!;
    const listed = (await call(h.d.clients.image, 'ListImages', { filter: { image: { image: h.busybox } } }))
      .images[0];
    expect(status.id).toBe(pulled.image_ref);
    expect(listed.id).toBe(pulled.image_ref);
    const cfg = h.podConfig();
    const pod = await h.runPod(cfg);
    try {
      const id = await h.startCtr(pod, cfg, h.ctrConfig('same', ['sleep', '3600']));
      const ctr = (await call(rt, 'ListContainers', { filter: { id } })).containers[0];
      const st = (await call(rt, 'ContainerStatus', { container_id: id })).status!;
      expect(ctr.image_id).toBe(pulled.image_ref);
      expect(st.image_id).toBe(pulled.image_ref);
    } finally {
      await h.removePod(pod);
    }
  });

  test('RemoveImage by one tag removes the image with all its tags', async () => {
    const im = h.d.clients.image;
    const spec = { layers: [busyboxLayer()], config: { Cmd: ['sh'], Labels: { twin: 'yes' } } };
    const one = (await pushImage(h.reg, 'library/twins', 'one', spec)).reference;
    const two = (await pushImage(h.reg, 'other/twins', 'two', spec)).reference;
    const a = await call(im, 'PullImage', { image: { image: one } });
    const b = await call(im, 'PullImage', { image: { image: two } });
    expect(b.image_ref).toBe(a.image_ref);
    expect((await call(im, 'ImageStatus', { image: { image: one } })).image?.repo_tags.sort()).toEqual(
      [one, two].sort(),
    );
    await call(im, 'RemoveImage', { image: { image: one } });
    expect((await call(im, 'ImageStatus', { image: { image: two } })).image ?? null).toBeNull();
    expect((await call(im, 'ListImages', {})).images.map((i) => i.id)).not.toContain(a.image_ref);
    // idempotent
    await call(im, 'RemoveImage', { image: { image: two } });
  });
});

test('berthctl version prints the CRI API version; berthctl inspect shows the stop signal', async () => {
  const v = await berthctl(h.d, ['version']);
  expect(v.code).toBe(0);
  expect(v.stdout).toMatch(/^CriApi: +k8s\.io\/cri-api main@791729b/m);
  const cfg = h.podConfig();
  const pod = await h.runPod(cfg);
  try {
    const id = await h.startCtr(
      pod,
      cfg,
      h.ctrConfig('insp', ['sleep', '3600'], { stop_signal: 'SIGNAL_SIGQUIT' }),
    );
    const r = await berthctl(h.d, ['inspect', id]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).status.stop_signal).toBe('SIGNAL_SIGQUIT');
  } finally {
    await h.removePod(pod);
  }
});

test('UpdatePodSandboxResources records the pod resources (verbose status); containers still resize', async () => {
  const rt = h.d.clients.runtime;
  const cfg = h.podConfig();
  const pod = await h.runPod(cfg);
  try {
    const id = await h.startCtr(pod, cfg, h.ctrConfig('resized', ['sleep', '3600']));
    await call(rt, 'UpdatePodSandboxResources', {
      pod_sandbox_id: pod,
      overhead: { cpu_shares: '10', memory_limit_in_bytes: String(32 << 20) },
      resources: { cpu_shares: '512', memory_limit_in_bytes: String(256 << 20) },
    });
    const info = async () =>
      JSON.parse(
        (await call(h.d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info
          .info,
      );
    const got = (await info()).podResources;
    expect(got.resources.memory_limit_in_bytes).toBe(String(256 << 20));
    expect(got.overhead.cpu_shares).toBe('10');
    // a container of the pod is resized during the pod resize, as before
    await call(rt, 'UpdateContainerResources', {
      container_id: id,
      linux: { memory_limit_in_bytes: String(128 << 20) },
    });
    const st = (await call(rt, 'ContainerStatus', { container_id: id })).status!;
    expect(st.resources?.linux?.memory_limit_in_bytes).toBe(String(128 << 20));
    // recorded: survives a kill -9 of berthd
    await h.d.kill9();
    await h.d.restart();
    expect((await info()).podResources.resources.memory_limit_in_bytes).toBe(String(256 << 20));
    // bad input and unknown pods
    await expect(
      call(h.d.clients.runtime, 'UpdatePodSandboxResources', {
        pod_sandbox_id: pod,
        resources: { memory_limit_in_bytes: '-1' },
      }),
    ).rejects.toMatchObject({ code: 3 });
    await expect(
      call(h.d.clients.runtime, 'UpdatePodSandboxResources', {
        pod_sandbox_id: 'f'.repeat(64),
        resources: {},
      }),
    ).rejects.toMatchObject({ code: 5 });
  } finally {
    await h.removePod(pod);
  }
});
