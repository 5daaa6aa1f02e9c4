// The overlay snapshotter against the real kernel: a layer stack with whiteouts and an opaque dir
// mounted with overlayfs, writes landing in the upper dir, a deep stack within the mount option
// limit, and a kill -9 in the middle of a layer apply. Needs root and `npm run build:native`.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { isBerthError, Status } from '../../internal/errors';
import { silentLogger } from '../../internal/log';
import { mountSnapshot, unmountSnapshot } from '../../internal/snapshot/mount';
import { OverlaySnapshotter } from '../../internal/snapshot/overlay';
import { makeTarSync, type TarEntry } from '../lab/tar';

const sha = (s: string): string => 'sha256:' + createHash('sha256').update(s).digest('hex');
const tarStream = (entries: TarEntry[]): Readable => Readable.from([makeTarSync(entries)]);

let tmp: string;
let root: string;
let snap: OverlaySnapshotter;
const mounted: string[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-snapit-'));
  root = path.join(tmp, 'snapshots');
  snap = new OverlaySnapshotter({ root, log: silentLogger() });
  await snap.init();
});

afterAll(() => {
  for (const m of mounted.reverse()) {
    try {
      unmountSnapshot(m, { detach: true });
    } catch {
      // already unmounted
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

function mountAt(spec: Parameters<typeof mountSnapshot>[0], name: string): string {
  const target = path.join(tmp, name);
  fs.mkdirSync(target);
  mountSnapshot(spec, target);
  mounted.push(target);
  return target;
}

function unmount(target: string): void {
  unmountSnapshot(target);
  mounted.splice(mounted.indexOf(target), 1);
}

const ls = (d: string): string[] => fs.readdirSync(d).sort();

const LAYERS: TarEntry[][] = [
  [
    { path: 'etc/', type: 'dir' },
    { path: 'etc/motd', content: 'base motd' },
    { path: 'etc/keep', content: 'keep me' },
    { path: 'etc/hostname', content: 'l1' },
    { path: 'var/cache/', type: 'dir', mode: 0o755 },
    { path: 'var/cache/old1', content: 'o1' },
    { path: 'var/cache/old2', content: 'o2' },
    { path: 'usr/share/doc/a', content: 'doc a' },
    { path: 'home/user/', type: 'dir', uid: 1000, gid: 1000, mode: 0o700 },
    { path: 'home/user/.profile', content: 'PS1=$', uid: 1000, gid: 1000 },
    { path: 'bin/tool', content: '#!/bin/sh\n', mode: 0o4755 },
  ],
  [
    { path: 'etc/.wh.motd', content: '' },
    { path: 'var/cache/.wh..wh..opq', content: '' },
    { path: 'var/cache/new2', content: 'n2' },
    { path: 'usr/share/doc/b', content: 'doc b' },
    { path: 'etc/hostname', content: 'l2' },
  ],
  [
    { path: 'etc/hostname', content: 'l3' },
    { path: 'usr/share/doc/.wh.a', content: '' },
    { path: 'newdir/x', content: 'x3' },
    { path: 'newdir/x-link', type: 'hardlink', linkname: 'newdir/x' },
    { path: 'run/fifo', type: 'fifo', mode: 0o600 },
  ],
];

test('a 3-layer stack with whiteouts and an opaque dir mounts with the right merged view', async () => {
  const ids: string[] = [];
  for (const [i, entries] of LAYERS.entries()) {
    const id = sha(`stack${i}`);
    await snap.applyLayer(id, ids[i - 1], tarStream(entries));
    ids.push(id);
  }
  const spec = await snap.prepare('ctr1', ids);
  const merged = mountAt(spec, 'merged');

  expect(fs.existsSync(path.join(merged, 'etc/motd'))).toBe(false);
  expect(fs.readFileSync(path.join(merged, 'etc/keep'), 'utf8')).toBe('keep me');
  expect(fs.readFileSync(path.join(merged, 'etc/hostname'), 'utf8')).toBe('l3');
  expect(ls(path.join(merged, 'etc'))).toEqual(['hostname', 'keep']);
  expect(ls(path.join(merged, 'var/cache'))).toEqual(['new2']);
  expect(ls(path.join(merged, 'usr/share/doc'))).toEqual(['b']);
  expect(fs.readFileSync(path.join(merged, 'newdir/x'), 'utf8')).toBe('x3');
  expect(fs.statSync(path.join(merged, 'newdir/x-link')).ino).toBe(
    fs.statSync(path.join(merged, 'newdir/x')).ino,
  );
  expect(fs.lstatSync(path.join(merged, 'run/fifo')).isFIFO()).toBe(true);
  const home = fs.lstatSync(path.join(merged, 'home/user'));
  expect([home.uid, home.gid, home.mode & 0o7777]).toEqual([1000, 1000, 0o700]);
  expect(fs.lstatSync(path.join(merged, 'bin/tool')).mode & 0o7777).toBe(0o4755);

  // While mounted, the layers cannot go.
  const err = await snap.removeLayer(ids[0]!).catch((e: unknown) => e);
  expect(isBerthError(err, Status.FAILED_PRECONDITION)).toBe(true);

  // Writes go to the upper dir; the layers stay untouched.
  const upper = (await snap.info('ctr1'))!.upperDir;
  fs.writeFileSync(path.join(merged, 'created'), 'new file');
  fs.appendFileSync(path.join(merged, 'etc/keep'), ' changed');
  fs.rmSync(path.join(merged, 'etc/hostname'));
  expect(fs.readFileSync(path.join(upper, 'created'), 'utf8')).toBe('new file');
  expect(fs.readFileSync(path.join(upper, 'etc/keep'), 'utf8')).toBe('keep me changed');
  const wh = fs.lstatSync(path.join(upper, 'etc/hostname'));
  expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
  expect(fs.readFileSync(path.join(root, 'layers', ids[0]!.slice(7), 'fs', 'etc/keep'), 'utf8')).toBe(
    'keep me',
  );
  expect(fs.readFileSync(path.join(root, 'layers', ids[2]!.slice(7), 'fs', 'etc/hostname'), 'utf8')).toBe(
    'l3',
  );
  const usage = await snap.usage('ctr1');
  expect(usage.inodes).toBeGreaterThanOrEqual(5); // upper, created, etc, etc/keep, etc/hostname
  expect(usage.bytes).toBeGreaterThan(0);

  unmount(merged);

  // The same spec works through mount(8) as well (what a runtime might hand to a helper).
  const viaCli = path.join(tmp, 'merged-cli');
  fs.mkdirSync(viaCli);
  execFileSync('mount', ['-t', spec.type, spec.source, '-o', spec.options.join(','), viaCli]);
  mounted.push(viaCli);
  expect(fs.readFileSync(path.join(viaCli, 'created'), 'utf8')).toBe('new file');
  expect(fs.existsSync(path.join(viaCli, 'etc/hostname'))).toBe(false);
  unmount(viaCli);

  await snap.remove('ctr1');
  expect(await snap.info('ctr1')).toBeUndefined();
  for (const id of [...ids].reverse()) await snap.removeLayer(id);
  expect(await snap.listLayers()).toEqual([]);
  expect(ls(path.join(root, 'layers'))).toEqual([]);
  expect(ls(path.join(root, 'snapshots'))).toEqual([]);
  expect(ls(path.join(root, 'l'))).toEqual([]);
});

test('a 60-layer stack mounts with every layer visible', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) {
    const id = sha(`deep${i}`);
    await snap.applyLayer(id, ids[i - 1], tarStream([{ path: `layer${i}`, content: String(i) }]));
    ids.push(id);
  }
  const spec = await snap.prepare('deep', ids);
  const merged = mountAt(spec, 'deep');
  const names = ls(merged).filter((n) => n.startsWith('layer'));
  expect(names).toHaveLength(60);
  expect(fs.readFileSync(path.join(merged, 'layer0'), 'utf8')).toBe('0');
  expect(fs.readFileSync(path.join(merged, 'layer59'), 'utf8')).toBe('59');
  unmount(merged);
  await snap.remove('deep');
  for (const id of ids) await snap.removeLayer(id);
});

test('a snapshot with no layers is a bind mount of its upper dir', async () => {
  const spec = await snap.prepare('scratch', []);
  const merged = mountAt(spec, 'scratch');
  fs.writeFileSync(path.join(merged, 'f'), 'x');
  expect(fs.readFileSync(path.join((await snap.info('scratch'))!.upperDir, 'f'), 'utf8')).toBe('x');
  unmount(merged);
  await snap.remove('scratch');
});

// A child process applies a layer whose tar stalls half-way through a big file; it is killed
// with SIGKILL while the `.tmp-` directory holds partial data. A fresh init() must clear it and
// the same layer must then apply cleanly.
test('kill -9 during applyLayer leaves nothing that survives init()', async () => {
  const crashRoot = path.join(tmp, 'crash');
  const id = sha('crash');
  const big = Buffer.alloc(8 << 20, 0x61);
  const tar = makeTarSync([
    { path: 'a/small', content: 'small' },
    { path: 'a/big', content: big },
  ]);
  const tarFile = path.join(tmp, 'crash.tar');
  fs.writeFileSync(tarFile, tar.subarray(0, 2 << 20)); // the child sends only this much, then stalls
  const repo = path.resolve(__dirname, '..', '..');
  const script = `
    const ts = require(${JSON.stringify(require.resolve('typescript'))});
    const fs = require('fs');
    require.extensions['.ts'] = (m, file) => {
      const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      });
      m._compile(out.outputText, file);
    };
    const { Readable } = require('stream');
    const { OverlaySnapshotter } = require(${JSON.stringify(path.join(repo, 'internal/snapshot/overlay.ts'))});
    const { silentLogger } = require(${JSON.stringify(path.join(repo, 'internal/log.ts'))});
    (async () => {
      const s = new OverlaySnapshotter({ root: ${JSON.stringify(crashRoot)}, log: silentLogger() });
      await s.init();
      const data = fs.readFileSync(${JSON.stringify(tarFile)});
      const stalled = new Readable({ read() {} });
      stalled.push(data);
      s.applyLayer(${JSON.stringify(id)}, undefined, stalled);
      setInterval(() => {}, 1000);
    })();
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const layers = path.join(crashRoot, 'layers');
    const deadline = Date.now() + 20000;
    let partial: string | undefined;
    while (!partial) {
      if (Date.now() > deadline) throw new Error(`child never got going: ${stderr}`);
      if (child.exitCode !== null) throw new Error(`child exited early: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
      const tmpDir = fs.existsSync(layers)
        ? fs.readdirSync(layers).find((n) => n.includes('.tmp-'))
        : undefined;
      const bigFile = tmpDir && path.join(layers, tmpDir, 'fs', 'a', 'big');
      if (bigFile && fs.existsSync(bigFile) && fs.statSync(bigFile).size > 0) partial = tmpDir;
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) =>
      child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r),
    );
  }
  expect(fs.readdirSync(path.join(crashRoot, 'layers')).some((n) => n.includes('.tmp-'))).toBe(true);

  const after = new OverlaySnapshotter({ root: crashRoot, log: silentLogger() });
  await after.init();
  expect(fs.readdirSync(path.join(crashRoot, 'layers'))).toEqual([]);
  expect(fs.readdirSync(path.join(crashRoot, 'l'))).toEqual([]);
  expect(await after.hasLayer(id)).toBe(false);

  const info = await after.applyLayer(id, undefined, Readable.from([tar]));
  expect(info.inodes).toBe(4);
  expect(fs.statSync(path.join(crashRoot, 'layers', id.slice(7), 'fs', 'a', 'big')).size).toBe(big.length);
  await after.removeLayer(id);
});

test('a hostile layer is rejected with nothing left in the store', async () => {
  const outside = path.join(tmp, 'outside');
  fs.mkdirSync(outside);
  const err = await snap
    .applyLayer(
      sha('hostile'),
      undefined,
      tarStream([
        { path: 'ok/file', content: 'fine' },
        { path: 'escape', type: 'symlink', linkname: outside },
        { path: 'escape/pwned', content: 'x' },
      ]),
    )
    .catch((e: unknown) => e);
  expect(isBerthError(err, Status.INVALID_ARGUMENT)).toBe(true);
  expect((err as Error).message).toMatch(/escape\/pwned.*symlink 'escape'/);
  expect(fs.readdirSync(outside)).toEqual([]);
  expect(ls(path.join(root, 'layers'))).toEqual([]);
  expect(ls(path.join(root, 'l'))).toEqual([]);
});
