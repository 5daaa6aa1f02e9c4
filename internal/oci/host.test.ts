import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readBundleSpec, writeBundle } from './bundle';
import { detectCgroupFeatures, readEffectiveCapabilities, resolveMountSources, statDevice } from './host';
import { buildSandboxSpec } from './spec';
import { mount, sandboxInput } from './test-fixtures';

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-oci-host-'));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

describe('host facts', () => {
  it('statDevice', async () => {
    expect(await statDevice('/dev/null')).toMatchObject({ type: 'c', major: 1, minor: 3 });
    expect(await statDevice(path.join(tmp, 'missing'))).toBeNull();
    await expect(statDevice(tmp)).rejects.toThrow(/not a device node/);
  });
  it('resolveMountSources follows symlinks and reports missing paths', async () => {
    await fsp.mkdir(path.join(tmp, 'real'));
    await fsp.symlink(path.join(tmp, 'real'), path.join(tmp, 'link'));
    const real = await fsp.realpath(path.join(tmp, 'real'));
    const r = await resolveMountSources([
      mount({ container_path: '/a', host_path: path.join(tmp, 'link') }),
      mount({ container_path: '/b', host_path: path.join(tmp, 'nope') }),
      mount({
        container_path: '/c',
        host_path: path.join(tmp, 'real'),
        propagation: 'PROPAGATION_HOST_TO_CONTAINER',
      }),
    ]);
    expect(r[path.join(tmp, 'link')]).toEqual({ realPath: real });
    expect(r[path.join(tmp, 'nope')]).toBeNull();
    expect(['shared', 'slave', 'private']).toContain(r[path.join(tmp, 'real')]?.propagation);
  });
  it('capabilities and cgroup features read without error', async () => {
    expect(Array.isArray(await readEffectiveCapabilities())).toBe(true);
    const f = await detectCgroupFeatures();
    expect(typeof f.swap).toBe('boolean');
  });
});

describe('writeBundle', () => {
  it('creates a 0700 bundle with rootfs and config.json', async () => {
    const dir = path.join(tmp, 'bundle');
    const spec = buildSandboxSpec(sandboxInput({ rootfs: path.join(dir, 'rootfs') }));
    await writeBundle(dir, spec);
    expect((await fsp.stat(dir)).mode & 0o777).toBe(0o700);
    expect((await fsp.stat(path.join(dir, 'rootfs'))).isDirectory()).toBe(true);
    expect(await readBundleSpec(dir)).toEqual(spec);
    // rewriting replaces it atomically, leaving no temp files
    await writeBundle(dir, { ...spec, hostname: 'other' });
    expect((await readBundleSpec(dir)).hostname).toBe('other');
    expect((await fsp.readdir(dir)).sort()).toEqual(['config.json', 'rootfs']);
  });
});
