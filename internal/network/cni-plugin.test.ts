import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Status } from '../errors';
import {
  CniPluginError,
  buildCniArgs,
  buildPluginConf,
  execPlugin,
  findPlugin,
  runtimeConfigFor,
  validateCniArgValue,
  type PluginInvocation,
} from './cni-plugin';
import { podCidrRanges, validateCapabilityArgs } from './cni';

const POD = { namespace: 'default', name: 'web-0', uid: '6f0d3c2a-1b2c-4d5e-8f90-0123456789ab' };

describe('CNI_ARGS', () => {
  test('built from the pod', () => {
    expect(buildCniArgs('abc123', POD)).toBe(
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=6f0d3c2a-1b2c-4d5e-8f90-0123456789ab',
    );
  });

  test.each([
    [{ ...POD, name: 'a;K8S_POD_NAME=b' }, /pod name .*contains ';'/],
    [{ ...POD, namespace: 'x=y' }, /pod namespace/],
    [{ ...POD, uid: 'a b' }, /pod uid/],
    [{ ...POD, name: 'tab\there' }, /pod name/],
    [{ ...POD, name: 'é' }, /pod name/],
    [{ ...POD, name: '' }, /pod name must not be empty/],
    [{ ...POD, namespace: 'n'.repeat(254) }, /longer than 253/],
  ])('rejects %#', (pod, msg) => {
    expect(() => buildCniArgs('abc', pod)).toThrow(msg);
    try {
      buildCniArgs('abc', pod);
    } catch (err) {
      expect((err as { code: Status }).code).toBe(Status.INVALID_ARGUMENT);
    }
  });

  test('an empty uid is allowed, a bad pod id is not', () => {
    expect(buildCniArgs('abc', { ...POD, uid: '' })).toMatch(/K8S_POD_UID=$/);
    expect(() => buildCniArgs('a/b', POD)).toThrow(/invalid pod sandbox id/);
    expect(() => buildCniArgs('', POD)).toThrow(/invalid pod sandbox id/);
    expect(() => validateCniArgValue('x', 5)).toThrow(/must be a string/);
  });
});

describe('plugin config', () => {
  const list = { name: 'net', cniVersion: '1.0.0' };
  const portmap = { type: 'portmap', capabilities: { portMappings: true }, snat: true };
  const pm = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const, hostIP: '127.0.0.1' }];

  test('name, cniVersion and prevResult are set; runtimeConfig only for declared capabilities', () => {
    const prev = { cniVersion: '1.0.0', ips: [] };
    expect(buildPluginConf(list, portmap, { portMappings: pm, dns: { servers: ['1.1.1.1'] } }, prev)).toEqual(
      {
        type: 'portmap',
        capabilities: { portMappings: true },
        snat: true,
        name: 'net',
        cniVersion: '1.0.0',
        runtimeConfig: { portMappings: pm },
        prevResult: prev,
      },
    );
    expect(buildPluginConf(list, { type: 'bridge' }, { portMappings: pm })).toEqual({
      type: 'bridge',
      name: 'net',
      cniVersion: '1.0.0',
    });
  });

  test('a prevResult written in the file is never passed on', () => {
    expect(buildPluginConf(list, { type: 'x', prevResult: { bogus: 1 } }, {})).not.toHaveProperty(
      'prevResult',
    );
  });

  test('capabilities: dns, bandwidth, ipRanges; empty values and false capabilities omitted', () => {
    const plugin = {
      type: 'x',
      capabilities: { dns: true, bandwidth: true, ipRanges: true, portMappings: false },
    };
    expect(
      runtimeConfigFor(plugin, {
        portMappings: pm,
        dns: { servers: ['10.96.0.10'], searches: ['svc.cluster.local'] },
        bandwidth: { ingressRate: 1000000, ingressBurst: 2000000 },
        ipRanges: [[{ subnet: '10.244.1.0/24' }]],
      }),
    ).toEqual({
      dns: { servers: ['10.96.0.10'], searches: ['svc.cluster.local'], options: [] },
      bandwidth: { ingressRate: 1000000, ingressBurst: 2000000 },
      ipRanges: [[{ subnet: '10.244.1.0/24' }]],
    });
    expect(runtimeConfigFor(plugin, { dns: {}, bandwidth: {}, ipRanges: [] })).toEqual({});
    expect(
      runtimeConfigFor({ type: 'x', capabilities: { portMappings: true } }, { portMappings: [] }),
    ).toEqual({});
  });

  test('an existing runtimeConfig is kept under the injected values', () => {
    const conf = buildPluginConf(list, { ...portmap, runtimeConfig: { other: 1 } }, { portMappings: pm });
    expect(conf.runtimeConfig).toEqual({ other: 1, portMappings: pm });
  });

  test('port mappings are validated and protocols normalised', () => {
    expect(
      validateCapabilityArgs({
        portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'TCP' as 'tcp', hostIP: '' }],
      }).portMappings,
    ).toEqual([{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }]);
    expect(() =>
      validateCapabilityArgs({ portMappings: [{ hostPort: 70000, containerPort: 1, protocol: 'tcp' }] }),
    ).toThrow(/host_port/);
    expect(() =>
      validateCapabilityArgs({
        portMappings: [{ hostPort: 1, containerPort: 1, protocol: 'icmp' as 'tcp' }],
      }),
    ).toThrow(/protocol/);
    expect(() =>
      validateCapabilityArgs({
        portMappings: [{ hostPort: 1, containerPort: 1, protocol: 'udp', hostIP: 'nope' }],
      }),
    ).toThrow(/host_ip/);
  });

  test('pod CIDRs become ipRanges', () => {
    expect(podCidrRanges('10.244.1.0/24, fd00:1::/64')).toEqual([
      [{ subnet: '10.244.1.0/24' }],
      [{ subnet: 'fd00:1::/64' }],
    ]);
    expect(podCidrRanges([])).toEqual([]);
    expect(() => podCidrRanges('10.0.0.0')).toThrow(/not a CIDR/);
  });
});

describe('execPlugin (scripted plugins)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-cniexec-'));
  });
  afterAll(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  async function plugin(name: string, script: string): Promise<string> {
    const p = path.join(dir, name);
    await fsp.writeFile(p, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    return p;
  }

  const inv = (binary: string, over: Partial<PluginInvocation> = {}): PluginInvocation => ({
    binary,
    command: 'ADD',
    containerId: 'pod1',
    netns: '/run/berth/netns/pod1',
    ifName: 'eth0',
    cniArgs: buildCniArgs('pod1', POD),
    binDirs: [dir, '/nonexistent'],
    conf: { type: 'fake', name: 'net', cniVersion: '1.0.0' },
    timeoutMs: 5000,
    ...over,
  });

  test('gets the CNI environment and the config on stdin; its stdout JSON is returned', async () => {
    const p = await plugin(
      'echoenv',
      `conf=$(cat)
printf '{"cniVersion":"1.0.0","env":"%s|%s|%s|%s|%s|%s","conf":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$conf"`,
    );
    const out = (await execPlugin(inv(p))) as { env: string; conf: unknown };
    expect(out.env).toBe(
      `ADD|pod1|/run/berth/netns/pod1|eth0|${buildCniArgs('pod1', POD)}|${dir}:/nonexistent`,
    );
    expect(out.conf).toEqual({ type: 'fake', name: 'net', cniVersion: '1.0.0' });
  });

  test('an error JSON becomes a CniPluginError with code, msg and details', async () => {
    const p = await plugin(
      'fails',
      `cat >/dev/null; echo '{"cniVersion":"1.0.0","code":7,"msg":"invalid network config","details":"bridge: bad mtu"}'; exit 1`,
    );
    const err = (await execPlugin(inv(p, { conf: { type: 'bridge' } })).catch(
      (e: unknown) => e,
    )) as CniPluginError;
    expect(err).toBeInstanceOf(CniPluginError);
    expect(err.code).toBe(Status.INTERNAL);
    expect(err).toMatchObject({
      plugin: 'bridge',
      command: 'ADD',
      cniCode: 7,
      msg: 'invalid network config',
      details: 'bridge: bad mtu',
    });
    expect(err.message).toBe(
      'CNI plugin bridge ADD failed (code 7): invalid network config: bridge: bad mtu',
    );
  });

  test('a plain failure reports the exit status and stderr', async () => {
    const p = await plugin('crash', 'cat >/dev/null; echo "panic: boom" >&2; exit 2');
    await expect(execPlugin(inv(p))).rejects.toThrow(
      /CNI plugin fake ADD failed: exit status 2: panic: boom/,
    );
  });

  test('ADD must print a JSON result; DEL may print nothing', async () => {
    const quiet = await plugin('quiet', 'cat >/dev/null');
    await expect(execPlugin(inv(quiet))).rejects.toThrow(/printed no result/);
    await expect(execPlugin(inv(quiet, { command: 'DEL' }))).resolves.toBeUndefined();
    const junk = await plugin('junk', 'cat >/dev/null; echo not-json');
    await expect(execPlugin(inv(junk))).rejects.toThrow(/printed invalid JSON: not-json/);
  });

  test('a hanging plugin is killed at the timeout', async () => {
    const p = await plugin('hang', 'exec sleep 30');
    const t0 = Date.now();
    await expect(execPlugin(inv(p, { timeoutMs: 300 }))).rejects.toThrow(/timed out after 300 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  test('findPlugin searches the bin dirs in order and wants an executable file', async () => {
    await fsp.writeFile(path.join(dir, 'noexec'), '', { mode: 0o644 });
    expect(await findPlugin('quiet', ['/nonexistent', dir])).toBe(path.join(dir, 'quiet'));
    expect(await findPlugin('noexec', [dir])).toBeUndefined();
    expect(await findPlugin('missing', [dir])).toBeUndefined();
  });
});
