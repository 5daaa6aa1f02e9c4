// Self-tests of the test lab: real docker-registry (plain, htpasswd, token), real pushes, and the
// pause image run under real runc.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import {
  busyboxApplets,
  busyboxEntries,
  busyboxLayer,
  corruptBlob,
  fetchToken,
  getBlob,
  getManifest,
  gzipBuffer,
  makeTar,
  opaqueWhiteout,
  whiteout,
  MEDIA,
  parseChallenge,
  pauseLayer,
  pushBusybox,
  pushImage,
  pushIndex,
  pushPause,
  pushUserImage,
  sha256Digest,
  startRegistry,
  type LabRegistry,
} from '../lab';

const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

interface Extracted {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname: string | null;
  pax: Record<string, string> | null;
  body: Buffer;
}

async function listTar(tar: Buffer): Promise<Extracted[]> {
  const out: Extracted[] = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        out.push({
          name: h.name,
          type: h.type ?? 'file',
          mode: h.mode ?? 0,
          uid: h.uid ?? 0,
          gid: h.gid ?? 0,
          linkname: h.linkname ?? null,
          pax: (h as { pax?: Record<string, string> }).pax ?? null,
          body: Buffer.concat(chunks),
        });
        next();
      });
    });
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  Readable.from([tar]).pipe(ex);
  await done;
  return out;
}

const by0 = (list: Extracted[], name: string): Extracted | undefined => list.find((e) => e.name === name);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function expectStopped(reg: LabRegistry): Promise<void> {
  const dir = dirname(reg.storageDir);
  const pid = reg.pid;
  await reg.stop();
  expect(alive(pid)).toBe(false);
  expect(existsSync(dir)).toBe(false);
  await expect(fetch(`${reg.url}/v2/`)).rejects.toThrow();
}

describe('tar', () => {
  it('writes names verbatim, pax records, long names, modes and devices; reproducibly', async () => {
    const long = 'd/'.repeat(70) + 'f';
    const entries = [
      { path: 'a/', type: 'dir' as const, mode: 0o1777 },
      { path: 'a/f', content: 'hi', mode: 0o4755, uid: 1000, gid: 50 },
      { path: '../escape', content: 'x' },
      { path: '/abs', content: 'y' },
      { path: 'a/l', type: 'symlink' as const, linkname: '../../etc/passwd' },
      { path: 'a/h', type: 'hardlink' as const, linkname: 'a/f' },
      { path: 'a/c', type: 'char' as const, devmajor: 1, devminor: 3 },
      { path: 'a/zero', content: '', mode: 0 },
      { path: long, content: 'deep' },
      { path: 'x'.repeat(180), content: 'pax name' },
      whiteout('a/gone'),
      opaqueWhiteout('a/'),
      { path: 'a/xa', content: 'x', pax: { 'SCHILY.xattr.user.foo': 'bar' } },
    ];
    const tar = await makeTar(entries);
    expect((await makeTar(entries)).equals(tar)).toBe(true);
    expect(tar.length % 512).toBe(0);
    const got = await listTar(tar);
    expect(got.map((e) => e.name)).toEqual(entries.map((e) => e.path));
    expect(by0(got, 'a/.wh.gone')).toBeDefined();
    expect(by0(got, 'a/.wh..wh..opq')).toBeDefined();
    const by = new Map(got.map((e) => [e.name, e]));
    expect(by.get('a/')?.type).toBe('directory');
    expect(by.get('a/')?.mode).toBe(0o1777);
    expect(by.get('a/f')).toMatchObject({ mode: 0o4755, uid: 1000, gid: 50 });
    expect(by.get('a/f')?.body.toString()).toBe('hi');
    expect(by.get('a/l')).toMatchObject({ type: 'symlink', linkname: '../../etc/passwd' });
    expect(by.get('a/h')).toMatchObject({ type: 'link', linkname: 'a/f' });
    expect(by.get('a/c')?.type).toBe('character-device');
    expect(by.get('a/zero')?.mode).toBe(0);
    expect(by.get(long)?.body.toString()).toBe('deep');
    expect(by.get('x'.repeat(180))?.body.toString()).toBe('pax name');
    expect(by.get('a/xa')?.pax).toMatchObject({ 'SCHILY.xattr.user.foo': 'bar' });
  });

  it('builds a busybox rootfs with every applet and the users', async () => {
    const applets = busyboxApplets();
    expect(applets).toContain('sh');
    const entries = busyboxEntries({ users: true });
    const names = new Set(entries.map((e) => e.path));
    for (const a of applets) expect(names.has(`bin/${a}`)).toBe(true);
    expect(names.has('etc/hostname')).toBe(false);
    const passwd = String(entries.find((e) => e.path === 'etc/passwd')?.content);
    expect(passwd).toMatch(/^alice:x:1000:1000:/m);
    expect(passwd).toMatch(/^bob:x:1001:1001:/m);
    const group = String(entries.find((e) => e.path === 'etc/group')?.content);
    expect(group).toMatch(/^staff:x:50:alice$/m);
    expect(entries.find((e) => e.path === 'tmp/')?.mode).toBe(0o1777);
    expect(busyboxLayer()).toBe(busyboxLayer()); // cached per process
    const plain = String(busyboxEntries().find((e) => e.path === 'etc/passwd')?.content);
    expect(plain).not.toMatch(/alice/);
  });
});

describe('plain registry', () => {
  let reg: LabRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('serves a pushed busybox image whose blobs match their digests', async () => {
    const img = await pushBusybox(reg);
    expect(img.reference).toBe(`${reg.host}/library/busybox:latest`);
    const res = await fetch(`${reg.url}/v2/library/busybox/manifests/latest`, {
      headers: { Accept: MEDIA.dockerManifest },
    });
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(sha(body)).toBe(img.manifestDigest);
    expect(res.headers.get('docker-content-digest')).toBe(img.manifestDigest);
    const manifest = JSON.parse(body.toString()) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    expect(manifest.config.digest).toBe(img.configDigest);
    expect(manifest.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));

    const config = JSON.parse((await getBlob(reg, img.repo, img.configDigest)).toString()) as {
      rootfs: { diff_ids: string[] };
      config: { Cmd: string[] };
    };
    expect(config.rootfs.diff_ids).toEqual([img.layers[0].diffId]);
    expect(config.config.Cmd).toEqual(['sh']);
    const layer = await getBlob(reg, img.repo, img.layers[0].digest);
    expect(sha(layer)).toBe(img.layers[0].digest);
    expect(layer.length).toBe(img.layers[0].size);
    expect(sha(gunzipSync(layer))).toBe(img.layers[0].diffId);

    // The same push again gives the same digests (reproducible layers and config).
    const again = await pushBusybox(reg, 'other/busybox', 'v1');
    expect(again.manifestDigest).toBe(img.manifestDigest);
  });

  it('pushes OCI, zstd, uncompressed and untagged images and an index over them', async () => {
    const extra = await makeTar([{ path: 'hello', content: 'world\n' }]);
    const amd = await pushImage(reg, 'multi/amd', 'x', {
      layers: [busyboxLayer(), extra],
      format: 'oci',
      compression: 'zstd',
      platform: { os: 'linux', architecture: 'amd64' },
      config: { User: '1000:1000', Env: ['A=1'], Entrypoint: ['/bin/sh'], WorkingDir: '/tmp' },
    });
    expect(amd.layers.map((l) => l.mediaType)).toEqual([MEDIA.ociLayerZstd, MEDIA.ociLayerZstd]);
    expect(amd.layers[1].diffId).toBe(sha(extra));
    const arm = await pushImage(reg, 'multi/arm', undefined, {
      layers: [extra],
      format: 'oci',
      compression: 'none',
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    expect(arm.reference).toBe(`${reg.host}/multi/arm@${arm.manifestDigest}`);
    expect(arm.layers[0].digest).toBe(arm.layers[0].diffId);
    const byDigest = await getManifest(reg, 'multi/arm', arm.manifestDigest);
    expect(byDigest.digest).toBe(arm.manifestDigest);

    for (const format of ['oci', 'docker'] as const) {
      const idx = await pushIndex(reg, 'multi/all', format, [amd, arm], format);
      const got = await getManifest(reg, 'multi/all', format);
      expect(got.digest).toBe(idx.digest);
      expect(got.mediaType).toBe(format === 'oci' ? MEDIA.ociIndex : MEDIA.dockerList);
      const parsed = JSON.parse(got.body.toString()) as {
        manifests: { digest: string; platform: { architecture: string; variant?: string } }[];
      };
      expect(parsed.manifests.map((m) => m.digest)).toEqual([amd.manifestDigest, arm.manifestDigest]);
      expect(parsed.manifests[1].platform).toMatchObject({ architecture: 'arm64', variant: 'v8' });
      // The children were brought into the index's repo.
      expect((await getManifest(reg, 'multi/all', amd.manifestDigest)).digest).toBe(amd.manifestDigest);
    }
  });

  it('corruptBlob changes the served bytes but not their length', async () => {
    const img = await pushImage(reg, 'corrupt/me', 'v1', {
      layers: [await makeTar([{ path: 'f', content: 'payload' }])],
    });
    const digest = img.layers[0].digest;
    await corruptBlob(reg, digest);
    const served = await getBlob(reg, img.repo, digest);
    expect(served.length).toBe(img.layers[0].size);
    expect(sha(served)).not.toBe(digest);
  });

  it('stop leaves no process or temp dir', async () => {
    const r = await startRegistry();
    const img = await pushImage(r, 'x', 't', { layers: [await makeTar([{ path: 'f', content: 'f' }])] });
    expect(gunzipSync(gzipBuffer(Buffer.from('z'))).toString()).toBe('z');
    expect(existsSync(join(r.storageDir, 'docker/registry/v2/blobs'))).toBe(true);
    expect(img.layers).toHaveLength(1);
    await expectStopped(r);
  });
});

describe('basic auth registry', () => {
  it('requires the right password', async () => {
    const reg = await startRegistry({ auth: { kind: 'basic', username: 'lab', password: 's3cret' } });
    try {
      expect((await fetch(`${reg.url}/v2/`)).status).toBe(401);
      const img = await pushBusybox(reg);
      const url = `${reg.url}/v2/library/busybox/manifests/latest`;
      const headers = (p: string): Record<string, string> => ({
        Accept: MEDIA.dockerManifest,
        Authorization: 'Basic ' + Buffer.from(`lab:${p}`).toString('base64'),
      });
      const ok = await fetch(url, { headers: headers('s3cret') });
      expect(ok.status).toBe(200);
      expect(sha(Buffer.from(await ok.arrayBuffer()))).toBe(img.manifestDigest);
      const bad = await fetch(url, { headers: headers('wrong') });
      expect(bad.status).toBe(401);
      expect(parseChallenge(bad.headers.get('www-authenticate') ?? '').scheme).toBe('basic');
    } finally {
      await expectStopped(reg);
    }
  });
});

describe('token auth registry', () => {
  it('does the challenge → token → 200 dance and refuses bad credentials', async () => {
    const reg = await startRegistry({ auth: { kind: 'token', username: 'lab', password: 'tok3n' } });
    try {
      const img = await pushBusybox(reg, 'private/busybox', 'latest');
      const url = `${reg.url}/v2/private/busybox/manifests/latest`;
      const anon = await fetch(url, { headers: { Accept: MEDIA.dockerManifest } });
      expect(anon.status).toBe(401);
      const ch = parseChallenge(anon.headers.get('www-authenticate') ?? '');
      expect(ch.scheme).toBe('bearer');
      expect(ch.params.realm).toBe(reg.token?.realm);
      expect(ch.params.service).toBe(reg.token?.service);
      expect(ch.params.scope).toBe('repository:private/busybox:pull');

      const token = await fetchToken(ch.params.realm, ch.params.service, [ch.params.scope], {
        username: 'lab',
        password: 'tok3n',
      });
      const ok = await fetch(url, {
        headers: { Accept: MEDIA.dockerManifest, Authorization: `Bearer ${token}` },
      });
      expect(ok.status).toBe(200);
      expect(sha256Digest(Buffer.from(await ok.arrayBuffer()))).toBe(img.manifestDigest);

      // The token grants only its scope.
      const otherRepo = await fetch(`${reg.url}/v2/library/busybox/manifests/latest`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(otherRepo.status).toBe(401);
      // A tampered token is refused by the registry.
      const [h, c, s] = token.split('.');
      const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as { access: { name: string }[] };
      claims.access[0].name = 'library/busybox';
      const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
      const forgedRes = await fetch(`${reg.url}/v2/library/busybox/manifests/latest`, {
        headers: { Authorization: `Bearer ${forged}` },
      });
      expect(forgedRes.status).toBe(401);

      // Wrong password: the token server answers 401.
      const badUrl = new URL(ch.params.realm);
      badUrl.searchParams.set('service', ch.params.service);
      badUrl.searchParams.set('scope', ch.params.scope);
      const bad = await fetch(badUrl, {
        headers: { Authorization: 'Basic ' + Buffer.from('lab:nope').toString('base64') },
      });
      expect(bad.status).toBe(401);
      expect((await fetch(badUrl)).status).toBe(401);
      await expect(
        fetchToken(ch.params.realm, ch.params.service, [ch.params.scope], { username: 'lab', password: 'x' }),
      ).rejects.toThrow(/401/);
    } finally {
      const realm = reg.token?.realm ?? '';
      await expectStopped(reg);
      await expect(fetch(realm)).rejects.toThrow();
    }
  });
});

describe('pause image under runc', () => {
  it('stays up, exits 0 promptly on SIGTERM and SIGINT; busybox sh and users work', async () => {
    const reg = await startRegistry();
    const dir = await mkdtemp(join(tmpdir(), 'berth-lab-runc-'));
    const id = `berth-lab-pause-${process.pid}`;
    const runcRoot = join(dir, 'runc');
    const bundle = join(dir, 'bundle');
    const runc = (...args: string[]): ReturnType<typeof spawnSync> =>
      spawnSync('runc', ['--root', runcRoot, ...args], { cwd: bundle, encoding: 'utf8', timeout: 10000 });
    const state = (): string =>
      (JSON.parse(String(runc('state', id).stdout || '{}')) as { status?: string }).status ?? 'absent';
    let child: ChildProcess | undefined;
    try {
      const img = await pushPause(reg);
      expect(JSON.parse(img.config)).toMatchObject({ config: { Entrypoint: ['/pause'] } });
      const users = await pushUserImage(reg, 'users', 'v1', 'alice:staff');
      expect(JSON.parse(users.config)).toMatchObject({ config: { User: 'alice:staff' } });
      // Unpack the layers as served (gzip) into a rootfs: pause's two, then the users' /etc over them.
      const rootfs = join(bundle, 'rootfs');
      await mkdir(rootfs, { recursive: true });
      for (const [repo, l] of [
        ...img.layers.map((x) => [img.repo, x] as const),
        [users.repo, users.layers[0]] as const,
      ]) {
        const r = spawnSync('tar', ['-xzf', '-', '-C', rootfs], {
          input: await getBlob(reg, repo, l.digest),
        });
        expect(r.status).toBe(0);
      }
      expect(runc('spec').status).toBe(0);
      const specPath = join(bundle, 'config.json');
      const spec = JSON.parse(await readFile(specPath, 'utf8')) as {
        process: { terminal: boolean; args: string[] };
      };
      spec.process.terminal = false;

      for (const signal of ['TERM', 'INT']) {
        spec.process.args = ['/pause'];
        await writeFile(specPath, JSON.stringify(spec));
        // Foreground `runc run` exits with the container's status.
        const c = spawn('runc', ['--root', runcRoot, 'run', id], {
          cwd: bundle,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child = c;
        let stderr = '';
        c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));
        for (let i = 0; i < 250 && state() !== 'running'; i++) await new Promise((r) => setTimeout(r, 20));
        expect(state()).toBe('running');
        await new Promise((r) => setTimeout(r, 300));
        expect(c.exitCode).toBeNull(); // it stays up
        const t0 = Date.now();
        expect(runc('kill', id, signal).status).toBe(0);
        let timer: NodeJS.Timeout | undefined;
        const code = await Promise.race([
          exited,
          new Promise<string>((r) => (timer = setTimeout(() => r('timeout'), 5000))),
        ]);
        clearTimeout(timer);
        expect({ signal, code, stderr }).toEqual({ signal, code: 0, stderr: '' });
        expect(Date.now() - t0).toBeLessThan(1000);
        child = undefined;
      }

      // The same rootfs runs busybox's shell, and alice resolves through /etc/passwd and /etc/group.
      spec.process.args = ['/bin/sh', '-c', 'echo ok-$(id -u) $(id alice)'];
      await writeFile(specPath, JSON.stringify(spec));
      const sh = runc('run', id);
      expect(String(sh.stdout).trim()).toBe(
        'ok-0 uid=1000(alice) gid=1000(alice) groups=1000(alice),50(staff)',
      );
    } finally {
      if (child && child.exitCode === null) runc('kill', id, 'KILL');
      if (state() !== 'absent') runc('delete', '--force', id);
      await rm(dir, { recursive: true, force: true });
      await reg.stop();
    }
  });

  it('pause layer holds only /pause', async () => {
    const entries = await listTar(pauseLayer());
    expect(entries.map((e) => e.name)).toEqual(['pause']);
    expect(entries[0].mode).toBe(0o755);
  });
});
