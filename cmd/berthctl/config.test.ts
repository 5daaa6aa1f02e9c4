import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadContainerConfig, loadPodConfig, parseConfigText, toMessage } from './config';

describe('toMessage', () => {
  it('keeps proto field names and converts enum numbers to names', () => {
    const m = toMessage(
      {
        metadata: { name: 'a', namespace: 'ns', uid: 'u', attempt: 1 },
        log_directory: '/tmp/logs',
        port_mappings: [{ protocol: 1, container_port: 80, host_port: 8080 }],
        labels: { app: 'x' },
        linux: {
          security_context: {
            namespace_options: { network: 2, pid: 'CONTAINER' },
            run_as_user: { value: 1000 },
          },
        },
      },
      'PodSandboxConfig',
    );
    expect(m).toEqual({
      metadata: { name: 'a', namespace: 'ns', uid: 'u', attempt: 1 },
      log_directory: '/tmp/logs',
      port_mappings: [{ protocol: 'UDP', container_port: 80, host_port: 8080 }],
      labels: { app: 'x' },
      linux: {
        security_context: {
          namespace_options: { network: 'NODE', pid: 'CONTAINER' },
          run_as_user: { value: '1000' },
        },
      },
    });
  });

  it('converts mount propagation numbers and accepts names', () => {
    const m = toMessage(
      {
        mounts: [
          { container_path: '/a', host_path: '/b', readonly: true, propagation: 1 },
          { container_path: '/c', host_path: '/d', propagation: 'PROPAGATION_BIDIRECTIONAL' },
        ],
        envs: [{ key: 'K', value: 'V' }],
      },
      'ContainerConfig',
    );
    expect(m.mounts).toEqual([
      { container_path: '/a', host_path: '/b', readonly: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' },
      { container_path: '/c', host_path: '/d', propagation: 'PROPAGATION_BIDIRECTIONAL' },
    ]);
    expect(m.envs).toEqual([{ key: 'K', value: Buffer.from('V') }]);
  });

  it('treats null (YAML `key:`) as absent', () => {
    expect(toMessage({ hostname: null, metadata: { name: 'x' } }, 'PodSandboxConfig')).toEqual({
      metadata: { name: 'x' },
    });
  });

  it.each([
    [
      { log_dir: '/x' },
      /\.log_dir: unknown field "log_dir" in PodSandboxConfig \(did you mean "log_directory"\?\)/,
    ],
    [{ logDirectory: '/x' }, /did you mean "log_directory"/],
    [
      { metadata: { nmae: 'x' } },
      /\.metadata\.nmae: unknown field "nmae" in PodSandboxMetadata \(did you mean "name"\?\)/,
    ],
    [
      { linux: { security_context: { namespace_options: { network: 7 } } } },
      /network: number 7 is not a NamespaceMode/,
    ],
    [
      { linux: { security_context: { namespace_options: { network: 'HOST' } } } },
      /POD, CONTAINER, NODE, TARGET/,
    ],
    [{ metadata: { attempt: -1 } }, /\.metadata\.attempt: uint32 cannot be negative/],
    [{ metadata: { attempt: 1.5 } }, /\.metadata\.attempt: expected uint32, got number 1\.5/],
    [{ labels: { a: 1 } }, /\.labels\.a: expected string, got number 1/],
    [{ port_mappings: {} }, /\.port_mappings: expected a list, got an object/],
    [{ metadata: 'x' }, /\.metadata: expected an object \(PodSandboxMetadata\)/],
    [[1], /top level: expected an object/],
  ])('rejects %j', (doc, re) => {
    expect(() => toMessage(doc, 'PodSandboxConfig')).toThrow(ConfigError);
    expect(() => toMessage(doc, 'PodSandboxConfig')).toThrow(re);
  });

  it('checks int ranges and keeps int64 as decimal strings', () => {
    expect(() => toMessage({ metadata: { attempt: 2 ** 32 } }, 'PodSandboxConfig')).toThrow(
      /expected uint32/,
    );
    const r = toMessage(
      { linux: { resources: { memory_limit_in_bytes: '9007199254740993' } } },
      'ContainerConfig',
    );
    expect(r).toEqual({ linux: { resources: { memory_limit_in_bytes: '9007199254740993' } } });
  });
});

describe('parseConfigText', () => {
  it('parses YAML and JSON by extension', () => {
    expect(parseConfigText('metadata:\n  name: a\n', 'p.yaml')).toEqual({ metadata: { name: 'a' } });
    expect(parseConfigText('{"metadata":{"name":"a"}}', 'p.json')).toEqual({ metadata: { name: 'a' } });
  });
  it('names the file and format on a syntax error', () => {
    expect(() => parseConfigText('{"a":', 'p.json')).toThrow(/p\.json: not valid JSON/);
    expect(() => parseConfigText('a: [1,\n', 'p.yml')).toThrow(/p\.yml: not valid YAML/);
  });
});

describe('example files', () => {
  const ex = path.join(__dirname, '..', '..', 'deploy', 'examples');
  it('load and agree between JSON and YAML', async () => {
    const podJson = await loadPodConfig(path.join(ex, 'pod.json'));
    const podYaml = await loadPodConfig(path.join(ex, 'pod.yaml'));
    expect(podYaml).toEqual(podJson);
    expect(podJson.metadata?.name).toBe('busybox-sandbox');
    const c = await loadContainerConfig(path.join(ex, 'container.json'));
    expect(c.image?.image).toMatch(/busybox/);
    expect(c.command).toEqual(['sh', '-c', 'while true; do echo hello; sleep 1; done']);
    expect(await loadContainerConfig(path.join(ex, 'container.yaml'))).toEqual(c);
  });
});

describe('loading files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'berthctl-config-'));
  });
  afterAll(async () => {
    await fs.promises.rm(dir, { recursive: true, force: true });
  });
  it('prefixes errors with the file name', async () => {
    const f = path.join(dir, 'bad.yaml');
    await fs.promises.writeFile(f, 'metadata:\n  name: a\nhost_name: x\n');
    await expect(loadPodConfig(f)).rejects.toThrow(`${f}: .host_name: unknown field "host_name"`);
  });
  it('says when the file is missing', async () => {
    await expect(loadPodConfig(path.join(dir, 'nope.json'))).rejects.toThrow(
      /cannot read .*nope\.json: ENOENT/,
    );
  });
});
