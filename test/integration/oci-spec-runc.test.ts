// The specs internal/oci builds, run by the real runc: user and groups, capabilities (default and
// privileged), seccomp, oom_score_adj clamp, read-only mounts and sysfs, as seen from inside.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  ALL_CAPABILITIES,
  capabilitiesFromMask,
  DEFAULT_CAPABILITIES,
} from '../../internal/oci/capabilities';
import { writeBundle, readBundleSpec } from '../../internal/oci/bundle';
import {
  detectCgroupFeatures,
  listHostDevices,
  readEffectiveCapabilities,
  readOwnOomScoreAdj,
  resolveMountSources,
} from '../../internal/oci/host';
import { cgroupsPathFor } from '../../internal/oci/resources';
import { buildContainerSpec, type HostFacts } from '../../internal/oci/spec';
import { resolveUser, userRequestFrom } from '../../internal/oci/user';
import {
  containerConfig,
  containerInput,
  mount,
  namespaceOptions,
  podConfig,
} from '../../internal/oci/test-fixtures';
import type { ContainerConfig__Output } from '../../api/generated';

const run = promisify(execFile);
const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/usr/bin/busybox';

let tmp: string;
let runcRoot: string;
let cgroupParent: string;
let host: HostFacts;
let features: { rro: boolean; swap: boolean; hugetlb: boolean };
const created: string[] = [];

beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-oci-'));
  runcRoot = path.join(tmp, 'runc');
  cgroupParent = `/berth-oci-test-${path.basename(tmp)}`;
  const cg = await detectCgroupFeatures();
  features = { rro: true, ...cg };
  host = {
    devices: await listHostDevices(),
    capabilities: await readEffectiveCapabilities(),
    ownOomScoreAdj: await readOwnOomScoreAdj(),
    restrictOomScoreAdj: true,
    appArmorAvailable: false,
  };
  await fsp.writeFile(path.join(tmp, 'hostname'), 'oci-test\n');
  await fsp.writeFile(path.join(tmp, 'hosts'), '127.0.0.1 localhost oci-test\n');
  await fsp.writeFile(path.join(tmp, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  await fsp.mkdir(path.join(tmp, 'shm'));
  await fsp.mkdir(path.join(tmp, 'data'));
  await fsp.writeFile(path.join(tmp, 'data', 'file'), 'host data\n');
});

afterAll(async () => {
  for (const id of created)
    await run(RUNC, ['--root', runcRoot, 'delete', '--force', id]).catch(() => undefined);
  // runc removes the containers' cgroups; the parent we named is ours to remove in each hierarchy
  const hier = await fsp.readdir('/sys/fs/cgroup').catch(() => [] as string[]);
  for (const h of ['', ...hier])
    await fsp.rmdir(path.join('/sys/fs/cgroup', h, cgroupParent)).catch(() => undefined);
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

async function makeRootfs(rootfs: string): Promise<void> {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'data', 'tmp'])
    await fsp.mkdir(path.join(rootfs, d), { recursive: true });
  await fsp.chmod(path.join(rootfs, 'tmp'), 0o1777);
  await fsp.copyFile(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
  await fsp.chmod(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'id', 'cat', 'echo', 'grep', 'touch', 'mkdir'])
    await fsp.symlink('busybox', path.join(rootfs, 'bin', a));
  await fsp.writeFile(
    path.join(rootfs, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n',
  );
  await fsp.writeFile(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nappgrp:x:1001:\nextra:x:2000:app\n');
}

const SCRIPT = [
  'id',
  'grep -E "^(CapEff|CapBnd|Seccomp|NoNewPrivs):" /proc/self/status',
  'echo oom=$(cat /proc/self/oom_score_adj)',
  'echo host=$HOSTNAME env=$GREETING',
  'cat /data/file',
  'touch /data/new 2>/dev/null && echo data=rw || echo data=ro',
  'grep -E " /sys sysfs " /proc/self/mounts',
  'mkdir /tmp/x && echo rootfs=rw',
].join('; ');

async function runContainer(
  name: string,
  config: ContainerConfig__Output,
  privilegedPod = false,
): Promise<string> {
  const id = `berth-oci-${name}-${path.basename(tmp).slice(-6)}`;
  const bundle = path.join(tmp, 'bundles', id);
  const rootfs = path.join(bundle, 'rootfs');
  await fsp.mkdir(rootfs, { recursive: true });
  await makeRootfs(rootfs);
  const sc = config.linux?.security_context;
  const user = resolveUser(userRequestFrom(sc, 'app'), {
    passwd: await fsp.readFile(path.join(rootfs, 'etc', 'passwd')),
    group: await fsp.readFile(path.join(rootfs, 'etc', 'group')),
  });
  const spec = buildContainerSpec(
    containerInput({
      id,
      config,
      sandboxConfig: podConfig({}, { privileged: privilegedPod }),
      image: { config: { Env: ['GREETING=from-image'] } },
      rootfs,
      user,
      namespaces: {},
      podFiles: {
        hostname: path.join(tmp, 'hostname'),
        hosts: path.join(tmp, 'hosts'),
        resolvConf: path.join(tmp, 'resolv.conf'),
        shm: path.join(tmp, 'shm'),
      },
      hostname: 'oci-test',
      cgroupsPath: cgroupsPathFor('cgroupfs', cgroupParent, id),
      mountSources: await resolveMountSources(config.mounts),
      host,
      features,
    }),
  );
  await writeBundle(bundle, spec);
  expect(await readBundleSpec(bundle)).toEqual(spec);
  created.push(id);
  try {
    const { stdout } = await run(RUNC, ['--root', runcRoot, 'run', '--bundle', bundle, id], {
      timeout: 30000,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`runc run failed: ${e.message}\nstdout: ${e.stdout}\nstderr: ${e.stderr}`);
  }
}

function field(out: string, name: string): string {
  const m = new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(out);
  if (!m) throw new Error(`no ${name} in output:\n${out}`);
  return m[1];
}

// host namespaces for net/uts/ipc (no pod here), a new pid namespace
const ns = namespaceOptions({ network: 'NODE', ipc: 'NODE', pid: 'CONTAINER' });
const dataMount = mount({ container_path: '/data', host_path: '', readonly: true });

test('default container: user, groups, default capabilities, seccomp, clamped oom, read-only mounts', async () => {
  const config = containerConfig(
    {
      command: ['/bin/sh', '-c', SCRIPT],
      envs: [{ key: 'GREETING', value: Buffer.from('from-cri') }],
      mounts: [{ ...dataMount, host_path: path.join(tmp, 'data') }],
    },
    {
      namespace_options: ns,
      supplemental_groups: ['3000'],
      seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' },
      no_new_privs: true,
    },
    { oom_score_adj: '-999', cpu_shares: '512', memory_limit_in_bytes: String(64 * 1024 * 1024) },
  );
  const out = await runContainer('default', config);
  expect(out).toMatch(/uid=1000\(app\) gid=1001\(appgrp\) groups=1001\(appgrp\),2000\(extra\),3000/);
  expect(new Set(capabilitiesFromMask(field(out, 'CapBnd')))).toEqual(new Set(DEFAULT_CAPABILITIES));
  expect(field(out, 'CapEff')).toBe('0000000000000000'); // non-root: exec clears the effective set
  expect(field(out, 'Seccomp')).toBe('2');
  expect(field(out, 'NoNewPrivs')).toBe('1');
  expect(out).toContain(`oom=${Math.max(host.ownOomScoreAdj, -999)}`);
  expect(out).toContain('host=oci-test env=from-cri');
  expect(out).toContain('host data');
  expect(out).toContain('data=ro');
  expect(out).toMatch(/ \/sys sysfs ro,/);
  expect(out).toContain('rootfs=rw');
});

test('root gets the default set in CapEff; drop ALL + add leaves only that', async () => {
  const base = {
    command: ['/bin/sh', '-c', SCRIPT],
    mounts: [{ ...dataMount, host_path: path.join(tmp, 'data') }],
  };
  const out = await runContainer(
    'root',
    containerConfig(base, { namespace_options: ns, run_as_user: { value: '0' } }),
  );
  expect(out).toMatch(/uid=0\(root\) gid=0\(root\)/);
  expect(new Set(capabilitiesFromMask(field(out, 'CapEff')))).toEqual(new Set(DEFAULT_CAPABILITIES));
  expect(field(out, 'Seccomp')).toBe('0'); // unset seccomp means Unconfined
  const only = await runContainer(
    'dropall',
    containerConfig(base, {
      namespace_options: ns,
      run_as_user: { value: '0' },
      capabilities: {
        add_capabilities: ['NET_ADMIN'],
        drop_capabilities: ['ALL'],
        add_ambient_capabilities: [],
      },
    }),
  );
  expect(capabilitiesFromMask(field(only, 'CapEff'))).toEqual(['CAP_NET_ADMIN']);
});

test('privileged container: every capability we have, no seccomp, writable sysfs', async () => {
  const config = containerConfig(
    { command: ['/bin/sh', '-c', SCRIPT], mounts: [{ ...dataMount, host_path: path.join(tmp, 'data') }] },
    {
      namespace_options: ns,
      privileged: true,
      run_as_user: { value: '0' },
      seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' },
    },
  );
  const out = await runContainer('priv', config, true);
  const caps = capabilitiesFromMask(field(out, 'CapEff'));
  expect(caps).toEqual(host.capabilities);
  expect(caps.length).toBeGreaterThan(DEFAULT_CAPABILITIES.length);
  expect(ALL_CAPABILITIES).toEqual(expect.arrayContaining(caps));
  expect(field(out, 'Seccomp')).toBe('0');
  expect(out).toMatch(/ \/sys sysfs rw,/);
});
