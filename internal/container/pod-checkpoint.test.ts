import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Status } from '../errors';
import { containerConfig, podConfig } from '../oci/test-fixtures';
import {
  buildManifest,
  checkCheckpointSelection,
  checkpointFiles,
  parseManifest,
  planRestore,
  type RestoreRequest,
} from './pod-checkpoint';
import { checkOutputDir, readPodCheckpoint, writePodCheckpointFiles } from './pod-checkpoint-io';

const web = containerConfig({ metadata: { name: 'web', attempt: 0 }, command: ['httpd'], args: ['-f'] });
const side = containerConfig({ metadata: { name: 'side', attempt: 1 }, command: ['sleep'], args: ['9'] });
const manifest = () =>
  buildManifest({
    berth: '0.1.0',
    criApi: 'cri main',
    now: new Date('2026-12-07T03:00:00Z'),
    pod: { id: 'p'.repeat(64), config: podConfig(), runtimeHandler: 'runc' },
    containers: [
      { id: 'a'.repeat(64), config: web, imageId: 'sha256:1' },
      { id: 'b'.repeat(64), config: side, imageId: 'sha256:2' },
    ],
  });
const codeOf = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: number }).code;
  }
  return undefined;
};

describe('pod checkpoint manifest', () => {
  it('numbers the containers in order and lists every file, manifest last', () => {
    const m = manifest();
    expect(m).toMatchObject({
      format: 'berth.pod-checkpoint',
      version: 1,
      berth: '0.1.0',
      createdAt: '2026-12-07T03:00:00.000Z',
      pod: {
        name: 'pod',
        namespace: 'default',
        uid: 'uid-1',
        runtimeHandler: 'runc',
        config: 'pod-config.json',
      },
      containers: [
        {
          name: 'web',
          image: 'busybox',
          imageId: 'sha256:1',
          config: 'containers/0/config.json',
          archive: 'containers/0/checkpoint.tar',
        },
        { name: 'side', config: 'containers/1/config.json', archive: 'containers/1/checkpoint.tar' },
      ],
    });
    expect(checkpointFiles(m)).toEqual([
      'pod-config.json',
      'containers/0/config.json',
      'containers/0/checkpoint.tar',
      'containers/1/config.json',
      'containers/1/checkpoint.tar',
      'manifest.json',
    ]);
  });
  it('round-trips through JSON', () => {
    expect(parseManifest(JSON.stringify(manifest()))).toEqual(manifest());
  });
  it('refuses what it cannot restore, saying why', () => {
    const edit = (f: (m: Record<string, unknown>) => void): string => {
      const m = JSON.parse(JSON.stringify(manifest())) as Record<string, unknown>;
      f(m);
      return JSON.stringify(m);
    };
    const cases: [string, RegExp][] = [
      ['{', /not JSON/],
      ['null', /not an object/],
      [edit((m) => (m.format = 'crio')), /not a Berth pod checkpoint/],
      [edit((m) => (m.version = 2)), /version 2 cannot be restored/],
      [edit((m) => ((m.pod as Record<string, unknown>).config = '../etc/passwd')), /pod.config/],
      [edit((m) => (m.containers = [])), /containers: none/],
      [edit((m) => ((m.containers as Record<string, unknown>[])[1]!.name = 'web')), /appears twice/],
      [edit((m) => ((m.containers as Record<string, unknown>[])[0]!.archive = '/tmp/x.tar')), /archive/],
      [edit((m) => ((m.containers as Record<string, unknown>[])[0]!.name = '')), /empty name/],
    ];
    for (const [text, re] of cases) {
      expect(() => parseManifest(text)).toThrow(re);
      expect(codeOf(() => parseManifest(text))).toBe(Status.INVALID_ARGUMENT);
    }
  });
});

describe('restore plan', () => {
  const req = (o: Partial<RestoreRequest> = {}): RestoreRequest => ({
    config: podConfig({ metadata: { name: 'pod', uid: 'new-uid', namespace: 'default', attempt: 0 } }),
    runtimeHandler: 'runc',
    options: {},
    // the caller's order does not matter: containers follow the checkpoint's order
    containerConfigs: [{ ...side, labels: { restored: 'yes' } }, web],
    ...o,
  });
  it('runs the sandbox with the request config, then the containers in checkpoint order', () => {
    const plan = planRestore(manifest(), [web, side], req());
    expect(plan.sandbox.config.metadata?.uid).toBe('new-uid');
    expect(plan.sandbox.runtimeHandler).toBe('runc');
    expect(plan.containers.map((c) => [c.name, c.archive, c.checkpointedId.slice(0, 1)])).toEqual([
      ['web', 'containers/0/checkpoint.tar', 'a'],
      ['side', 'containers/1/checkpoint.tar', 'b'],
    ]);
    // restore-time settings come from the request
    expect(plan.containers[1]!.config.labels).toEqual({ restored: 'yes' });
  });
  it('accepts configs that leave the process fields empty', () => {
    const bare = containerConfig({ metadata: { name: 'web', attempt: 0 }, image: null });
    expect(() => planRestore(manifest(), [web, side], req({ containerConfigs: [bare, side] }))).not.toThrow();
  });
  it('refuses a request that does not match the checkpoint, naming the field', () => {
    const cases: [Partial<RestoreRequest>, RegExp][] = [
      [{ config: null }, /config: the pod sandbox config is required/],
      [{ options: { 'criu.tcp': '1' } }, /options: Berth defines no restore option \(got criu.tcp\)/],
      [{ runtimeHandler: 'crun' }, /runtime_handler crun is not the checkpoint's runc/],
      [{ containerConfigs: [] }, /container_configs: the list is empty/],
      [{ containerConfigs: [web] }, /no config for checkpointed container side/],
      [
        { containerConfigs: [web, side, { ...side, metadata: { name: 'extra', attempt: 0 } }] },
        /extra is not a container/,
      ],
      [{ containerConfigs: [web, side, side] }, /side appears twice/],
      [{ containerConfigs: [{ ...web, metadata: null }, side] }, /metadata.name is empty/],
      [{ containerConfigs: [{ ...web, command: ['nginx'] }, side] }, /\[web\].command differs/],
      [{ containerConfigs: [web, { ...side, args: ['1'] }] }, /\[side\].args differ/],
      [{ containerConfigs: [{ ...web, working_dir: '/srv' }, side] }, /working_dir \/srv/],
      [
        { containerConfigs: [{ ...web, image: { ...web.image!, image: 'nginx' } }, side] },
        /image nginx is not the checkpointed busybox/,
      ],
    ];
    for (const [o, re] of cases) {
      expect(() => planRestore(manifest(), [web, side], req(o))).toThrow(re);
      expect(codeOf(() => planRestore(manifest(), [web, side], req(o)))).toBe(Status.INVALID_ARGUMENT);
    }
  });
});

describe('CheckpointPod container selection', () => {
  const recs: Record<string, { id: string; podId: string }> = {
    a1: { id: 'a1', podId: 'p' },
    b1: { id: 'b1', podId: 'p' },
    c1: { id: 'c1', podId: 'other' },
  };
  const lookup = (id: string) => {
    const r = recs[id];
    if (!r) throw Object.assign(new Error(`no ${id}`), { code: Status.NOT_FOUND });
    return r;
  };
  it('returns the ids in request order', () => {
    expect(checkCheckpointSelection('p', ['b1', 'a1'], lookup)).toEqual(['b1', 'a1']);
  });
  it('refuses an empty list, duplicates, other pods; unknown ids are the lookup`s NOT_FOUND', () => {
    expect(() => checkCheckpointSelection('p', [], lookup)).toThrow(/empty/);
    expect(() => checkCheckpointSelection('p', ['a1', 'a1'], lookup)).toThrow(/appears twice/);
    expect(() => checkCheckpointSelection('p', ['c1'], lookup)).toThrow(/not in pod p/);
    expect(codeOf(() => checkCheckpointSelection('p', ['zz'], lookup))).toBe(Status.NOT_FOUND);
  });
});

describe('pod checkpoint directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-pod-ckpt-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('output_path must be an absolute, existing, empty directory', async () => {
    await expect(checkOutputDir(dir)).resolves.toBeUndefined();
    await expect(checkOutputDir('rel/dir')).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    await expect(checkOutputDir(path.join(dir, 'nope'))).rejects.toThrow(/does not exist/);
    fs.writeFileSync(path.join(dir, 'f'), '');
    await expect(checkOutputDir(dir)).rejects.toThrow(/not empty \(has f\)/);
    await expect(checkOutputDir(path.join(dir, 'f'))).rejects.toThrow(/not a directory/);
  });
  it('writes the configs and manifest and reads them back without changing anything', async () => {
    const m = manifest();
    for (const c of m.containers) {
      fs.mkdirSync(path.dirname(path.join(dir, c.archive)), { recursive: true });
      fs.writeFileSync(path.join(dir, c.archive), 'tar');
    }
    await writePodCheckpointFiles(dir, m, podConfig(), [web, side]);
    const files = (d: string): string[] =>
      fs
        .readdirSync(d, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
        .sort();
    expect(files(dir)).toEqual([...checkpointFiles(m)].sort());
    const before = fs.statSync(path.join(dir, 'manifest.json')).mtimeMs;
    const back = await readPodCheckpoint(dir);
    expect(back.manifest).toEqual(m);
    expect(back.podConfig).toEqual(podConfig());
    expect(back.containerConfigs).toEqual([web, side]);
    expect(fs.statSync(path.join(dir, 'manifest.json')).mtimeMs).toBe(before);
    expect(files(dir)).toEqual([...checkpointFiles(m)].sort());
  });
  it('checkpoint_path: relative is INVALID_ARGUMENT, missing is NOT_FOUND, not a checkpoint is INVALID_ARGUMENT', async () => {
    await expect(readPodCheckpoint('x')).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    await expect(readPodCheckpoint(path.join(dir, 'gone'))).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(readPodCheckpoint(dir)).rejects.toThrow(/no manifest.json: not a Berth pod checkpoint/);
    const m = manifest();
    await writePodCheckpointFiles(dir, m, podConfig(), [web, side]);
    await expect(readPodCheckpoint(dir)).rejects.toThrow(/containers\/0\/checkpoint.tar is missing/);
  });
});
