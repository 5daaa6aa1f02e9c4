// RestorePod's CRIU-free half on this VM, where `criu check` fails: berthd runs with a stand-in
// `criu` (test/ only) that passes `criu check` and can do nothing else, so RestorePod goes past its
// FAILED_PRECONDITION. Real berthd, sandbox (netns, CNI, infra), overlay snapshots, tar, runc and
// conmon: the pod is run, each container is created from a checkpoint archive laid out as
// CheckpointContainer writes it (rootfs diff applied, CREATED, no process), a record that survives
// kill -9 of berthd; a bad archive rolls back the sandbox and the containers made before it; and
// StartContainer of a restored container reaches conmon --restore / runc restore, which fails with
// no real CRIU. This proves no process restore: with real CRIU that part has not run here.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { call } from '../../api/client';
import type { ContainerConfig__Output, PodSandboxConfig__Output } from '../../api/generated';
import { buildManifest } from '../../internal/container/pod-checkpoint';
import { writePodCheckpointFiles } from '../../internal/container/pod-checkpoint-io';
import { startHarness, type Harness } from '../lab/harness';

let h: Harness;
let tmp: string;

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthrs0', subnet: '10.224.0.0/24', prefix: 'rst' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-restore-'));
  const bin = path.join(tmp, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(
    path.join(bin, 'criu'),
    '#!/bin/sh\nif [ "$1" = check ]; then echo "Looks good."; exit 0; fi\necho "stand-in criu: cannot $1" >&2\nexit 1\n',
    { mode: 0o755 },
  );
  await h.d.stop();
  await h.d.restart({ PATH: `${bin}:${process.env.PATH ?? ''}` });
}, 180_000);

afterAll(async () => {
  await h?.cleanup();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** A container checkpoint archive as CheckpointContainer writes it; `images: false` leaves out checkpoint/. */
function containerArchive(dest: string, o: { images: boolean; file: string }): void {
  const src = fs.mkdtempSync(path.join(tmp, 'src-'));
  const upper = fs.mkdtempSync(path.join(tmp, 'upper-'));
  fs.writeFileSync(path.join(upper, 'restored.txt'), o.file);
  if (o.images) {
    fs.mkdirSync(path.join(src, 'checkpoint'));
    fs.writeFileSync(path.join(src, 'checkpoint', 'inventory.img'), 'not a real CRIU image');
  }
  fs.writeFileSync(path.join(src, 'spec.dump'), '{}');
  fs.writeFileSync(path.join(src, 'config.dump'), '{}');
  execFileSync('tar', ['--numeric-owner', '-C', upper, '-cf', path.join(src, 'rootfs-diff.tar'), '.']);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  execFileSync('tar', ['-C', src, '-cf', dest, '.']);
}

/** A pod checkpoint directory with one container per name (the last one's archive bad when asked). */
async function podCheckpoint(names: string[], badLast = false) {
  const dir = fs.mkdtempSync(path.join(tmp, 'ckpt-'));
  const podCfg = h.podConfig();
  const ctrs = names.map((n) => h.ctrConfig(n, ['sleep', '3600']));
  const manifest = buildManifest({
    berth: 'test',
    criApi: 'test',
    now: new Date(),
    pod: { id: 'c'.repeat(64), config: podCfg as PodSandboxConfig__Output, runtimeHandler: 'runc' },
    containers: ctrs.map((c, i) => ({
      id: String(i).repeat(64),
      config: c as ContainerConfig__Output,
      imageId: 'sha256:x',
    })),
  });
  manifest.containers.forEach((c, i) =>
    containerArchive(path.join(dir, c.archive), {
      images: !(badLast && i === names.length - 1),
      file: `from ${c.name}\n`,
    }),
  );
  await writePodCheckpointFiles(
    dir,
    manifest,
    podCfg as PodSandboxConfig__Output,
    ctrs as ContainerConfig__Output[],
  );
  return { dir, ctrs };
}

const bundles = (): string[] =>
  fs.existsSync(path.join(h.d.state, 'bundles'))
    ? fs.readdirSync(path.join(h.d.state, 'bundles')).sort()
    : [];

describe('RestorePod past criu check (stand-in criu)', () => {
  test('creates the pod and its containers CREATED with the rootfs diff applied; kept across kill -9; StartContainer reaches runc restore', async () => {
    let rt = h.d.clients.runtime;
    const { dir, ctrs } = await podCheckpoint(['app', 'side']);
    const files = fs.readdirSync(dir, { recursive: true }).sort();
    const res = await call(rt, 'RestorePod', {
      checkpoint_path: dir,
      config: h.podConfig(),
      container_configs: ctrs,
    });
    expect(res.pod_sandbox_id).toMatch(/^[0-9a-f]{64}$/);
    expect(res.restored_containers.map((c) => c.name)).toEqual(['app', 'side']);
    const ids = res.restored_containers.map((c) => c.container_id);
    expect(new Set(ids).size).toBe(2);
    // the checkpoint directory is only read
    expect(fs.readdirSync(dir, { recursive: true }).sort()).toEqual(files);
    const pod = await call(rt, 'PodSandboxStatus', { pod_sandbox_id: res.pod_sandbox_id });
    expect(pod.status?.state).toBe('SANDBOX_READY');
    for (const [i, id] of ids.entries()) {
      const s = await call(rt, 'ContainerStatus', { container_id: id });
      expect(s.status?.state).toBe('CONTAINER_CREATED');
      expect(s.status?.metadata?.name).toBe(ctrs[i]!.metadata!.name);
      // the rootfs diff is in the new container's rootfs, the CRIU images in its bundle
      const bundle = path.join(h.d.state, 'bundles', id);
      expect(fs.readFileSync(path.join(bundle, 'rootfs', 'restored.txt'), 'utf8')).toBe(
        `from ${ctrs[i]!.metadata!.name}\n`,
      );
      expect(fs.existsSync(path.join(bundle, 'restore', 'checkpoint', 'inventory.img'))).toBe(true);
    }
    // the restored containers are records that outlive berthd: still CREATED after kill -9
    await h.d.kill9();
    await h.d.restart();
    rt = h.d.clients.runtime;
    for (const id of ids)
      expect((await call(rt, 'ContainerStatus', { container_id: id })).status?.state).toBe(
        'CONTAINER_CREATED',
      );
    // StartContainer restores through conmon --restore; the stand-in criu cannot, so runc restore
    // fails and the container is EXITED with StartError, as any container that cannot start
    const err = await call(rt, 'StartContainer', { container_id: ids[0] }).then(
      () => undefined,
      (e: { details?: string }) => e,
    );
    expect(err?.details).toMatch(/^restore container [0-9a-f]+: CRIU/);
    const st = (await call(rt, 'ContainerStatus', { container_id: ids[0] })).status;
    expect(st?.state).toBe('CONTAINER_EXITED');
    expect(st?.reason).toBe('StartError');
    // a restored container never started stops and is removed like any other
    await call(rt, 'StopContainer', { container_id: ids[1], timeout: 0 });
    expect((await call(rt, 'ContainerStatus', { container_id: ids[1] })).status?.state).toBe(
      'CONTAINER_EXITED',
    );
    await h.removePod(res.pod_sandbox_id);
    expect((await call(rt, 'ListContainers', {})).containers.filter((c) => ids.includes(c.id))).toEqual([]);
  }, 120_000);

  test('a bad archive of the second container removes the first container and the sandbox (nothing left)', async () => {
    const rt = h.d.clients.runtime;
    const { dir, ctrs } = await podCheckpoint(['app', 'broken'], true);
    const pods = (await call(rt, 'ListPodSandbox', {})).items.length;
    const ctrsBefore = (await call(rt, 'ListContainers', {})).containers.length;
    const before = bundles();
    await expect(
      call(rt, 'RestorePod', { checkpoint_path: dir, config: h.podConfig(), container_configs: ctrs }),
    ).rejects.toMatchObject({ code: 3, details: expect.stringMatching(/no checkpoint\/ \(CRIU images\)/) });
    expect((await call(rt, 'ListPodSandbox', {})).items.length).toBe(pods);
    expect((await call(rt, 'ListContainers', {})).containers.length).toBe(ctrsBefore);
    // the removed containers' bundles (rootfs, unpacked checkpoint) go in the background
    for (let i = 0; i < 100 && bundles().length !== before.length; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(bundles()).toEqual(before);
  }, 120_000);
});
