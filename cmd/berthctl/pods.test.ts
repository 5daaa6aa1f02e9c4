import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { fail, sink, startFakeCri, type FakeCri } from '../../test/lab/fake-cri';
import { run } from './main';

const ID_A = 'a'.repeat(60) + '0001';
const ID_B = 'b'.repeat(60) + '0002';
const ID_C = 'a'.repeat(60) + '0003';
const NOW_NS = BigInt(Date.now()) * 1_000_000n;

function pod(id: string, name: string, ns: string, ageSec: number, state = 'SANDBOX_READY', handler = '') {
  return {
    id,
    metadata: { name, namespace: ns, uid: `uid-${name}`, attempt: 1 },
    state,
    created_at: (NOW_NS - BigInt(ageSec) * 1_000_000_000n).toString(),
    labels: { app: name },
    annotations: {},
    runtime_handler: handler,
  };
}

let fake: FakeCri;
const ctl = async (...argv: string[]) => {
  const out = sink();
  const err = sink();
  const code = await run(['--endpoint', fake.endpoint, ...argv], out, err);
  return { code, out: out.text, err: err.text };
};

beforeEach(async () => {
  fake = await startFakeCri();
});
afterEach(async () => {
  await fake.close();
});

describe('runp', () => {
  it('sends the config with enum numbers as names and the runtime handler, prints the id', async () => {
    const f = path.join(fake.dir, 'pod.yaml');
    await fs.promises.writeFile(
      f,
      'metadata: {name: p, namespace: default, uid: u1}\nlog_directory: /tmp/l\n' +
        'port_mappings: [{container_port: 80, host_port: 8080, protocol: 0}]\n' +
        'linux: {security_context: {namespace_options: {network: 2}}}\n',
    );
    fake.on('RunPodSandbox', () => ({ pod_sandbox_id: ID_A }));
    const r = await ctl('runp', '--runtime', 'runc', f);
    expect(r).toEqual({ code: 0, out: `${ID_A}\n`, err: '' });
    expect(fake.methods()).toEqual(['RunPodSandbox']);
    const req = fake.calls[0].req as {
      runtime_handler: string;
      config: {
        metadata: { name: string };
        log_directory: string;
        port_mappings: { protocol: string; host_port: number }[];
        linux: { security_context: { namespace_options: { network: string; pid: string } } };
      };
    };
    expect(req.runtime_handler).toBe('runc');
    expect(req.config.metadata.name).toBe('p');
    expect(req.config.log_directory).toBe('/tmp/l');
    expect(req.config.port_mappings).toEqual([expect.objectContaining({ protocol: 'TCP', host_port: 8080 })]);
    expect(req.config.linux.security_context.namespace_options).toEqual(
      expect.objectContaining({ network: 'NODE', pid: 'POD' }),
    );
  });

  it('refuses a config with an unknown field before any RPC', async () => {
    const f = path.join(fake.dir, 'pod.json');
    await fs.promises.writeFile(f, JSON.stringify({ metadata: { name: 'p' }, log_dir: '/x' }));
    const r = await ctl('runp', f);
    expect(r.code).toBe(1);
    expect(r.err).toContain('unknown field "log_dir" in PodSandboxConfig (did you mean "log_directory"?)');
    expect(fake.calls).toEqual([]);
  });

  it('shows the usage for a missing argument and an unknown flag', async () => {
    expect(await ctl('runp')).toMatchObject({
      code: 2,
      err: expect.stringContaining('usage: berthctl runp'),
    });
    expect(await ctl('runp', '--bogus', 'x')).toMatchObject({
      code: 2,
      err: expect.stringContaining("'--bogus'"),
    });
  });

  it('passes the server error on', async () => {
    const f = path.join(fake.dir, 'pod.json');
    await fs.promises.writeFile(f, '{"metadata":{"name":"p"}}');
    fake.on('RunPodSandbox', () => {
      throw fail(grpc.status.ALREADY_EXISTS, 'pod p already exists as aaaa');
    });
    expect(await ctl('runp', f)).toMatchObject({
      code: 1,
      err: 'berthctl runp: pod p already exists as aaaa\n',
    });
  });
});

describe('pods', () => {
  beforeEach(() => {
    fake.on('ListPodSandbox', () => ({
      items: [
        pod(ID_A, 'web', 'default', 120),
        pod(ID_B, 'db', 'prod', 10, 'SANDBOX_NOTREADY', 'kata'),
        pod(ID_C, 'web-2', 'default', 5000),
      ],
    }));
  });

  it('prints a table newest first with short ids', async () => {
    const r = await ctl('pods');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual([
      'POD ID',
      'CREATED',
      'STATE',
      'NAME',
      'NAMESPACE',
      'ATTEMPT',
      'RUNTIME',
    ]);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
      [
        ID_B.slice(0, 13),
        expect.stringMatching(/^1[0-9] seconds ago$/),
        'NotReady',
        'db',
        'prod',
        '1',
        'kata',
      ],
      [ID_A.slice(0, 13), '2 minutes ago', 'Ready', 'web', 'default', '1', '(default)'],
      [ID_C.slice(0, 13), '1 hours ago', 'Ready', 'web-2', 'default', '1', '(default)'],
    ]);
    expect(fake.calls[0].req).toEqual({ filter: { id: '', state: null, label_selector: {} } });
  });

  it('sends id, state and label filters to the server and filters name and namespace here', async () => {
    const r = await ctl(
      'pods',
      '--id',
      'aaa',
      '-s',
      'ready',
      '--label',
      'app=web',
      '--label',
      'x=y=z',
      '--name',
      '^web$',
      '--namespace',
      'def',
      '-q',
    );
    expect(r).toEqual({ code: 0, out: `${ID_A}\n`, err: '' });
    expect(fake.calls[0].req).toEqual({
      filter: { id: 'aaa', state: { state: 'SANDBOX_READY' }, label_selector: { app: 'web', x: 'y=z' } },
    });
  });

  it('prints JSON, full ids, and --latest/--last', async () => {
    const j = JSON.parse((await ctl('pods', '-o', 'json')).out) as { items: { id: string }[] };
    expect(j.items.map((p) => p.id)).toEqual([ID_B, ID_A, ID_C]);
    expect((await ctl('pods', '--no-trunc')).out).toContain(ID_C);
    expect((await ctl('pods', '-q', '--latest')).out).toBe(`${ID_B}\n`);
    expect((await ctl('pods', '-q', '-n', '2')).out).toBe(`${ID_B}\n${ID_A}\n`);
  });

  it('rejects a bad state, output format and regex', async () => {
    expect((await ctl('pods', '--state', 'running')).code).toBe(2);
    expect((await ctl('pods', '-o', 'xml')).code).toBe(2);
    expect((await ctl('pods', '--name', '(')).err).toContain('invalid regular expression');
  });
});

describe('inspectp', () => {
  it('resolves a short id, asks for verbose status and shows info as JSON', async () => {
    fake.on('ListPodSandbox', () => ({
      items: [pod(ID_A, 'web', 'default', 1), pod(ID_B, 'db', 'prod', 1)],
    }));
    fake.on('PodSandboxStatus', (req) => ({
      status: {
        ...pod(req.pod_sandbox_id as string, 'web', 'default', 0),
        created_at: '1700000000123456789',
      },
      info: { info: '{"pid":42,"runtimeSpec":{"ociVersion":"1.1.0"}}', plain: 'not json' },
    }));
    const r = await ctl('inspectp', ID_A.slice(0, 13));
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { status: { id: string; created_at: string }; info: unknown };
    expect(doc.status.id).toBe(ID_A);
    expect(doc.status.created_at).toBe('2023-11-14T22:13:20.123456789Z');
    expect(doc.info).toEqual({ info: { pid: 42, runtimeSpec: { ociVersion: '1.1.0' } }, plain: 'not json' });
    expect(fake.calls.map((c) => [c.method, c.req])).toEqual([
      ['ListPodSandbox', { filter: { id: ID_A.slice(0, 13), state: null, label_selector: {} } }],
      ['PodSandboxStatus', { pod_sandbox_id: ID_A, verbose: true }],
    ]);
  });

  it('refuses an ambiguous short id', async () => {
    fake.on('ListPodSandbox', () => ({ items: [pod(ID_A, 'a', 'd', 1), pod(ID_C, 'c', 'd', 1)] }));
    const r = await ctl('inspectp', 'aaaa');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/pod id aaaa is ambiguous/);
  });
});

describe('stopp and rmp', () => {
  it('stops each pod', async () => {
    fake.on('StopPodSandbox', () => ({}));
    const r = await ctl('stopp', ID_A, ID_B);
    expect(r.out).toBe(`Stopped sandbox ${ID_A}\nStopped sandbox ${ID_B}\n`);
    expect(fake.calls.map((c) => c.req.pod_sandbox_id)).toEqual([ID_A, ID_B]);
  });

  it('refuses to remove a ready pod without -f, stops it first with -f', async () => {
    fake.on('PodSandboxStatus', (req) => ({ status: pod(req.pod_sandbox_id as string, 'p', 'd', 1) }));
    fake.on('StopPodSandbox', () => ({}));
    fake.on('RemovePodSandbox', () => ({}));
    const r1 = await ctl('rmp', ID_A);
    expect(r1.code).toBe(1);
    expect(r1.err).toContain('is running, stop it first or use -f');
    expect(fake.methods()).toEqual(['PodSandboxStatus']);
    fake.calls.length = 0;
    const r2 = await ctl('rmp', '-f', ID_A);
    expect(r2).toEqual({ code: 0, out: `Removed sandbox ${ID_A}\n`, err: '' });
    expect(fake.methods()).toEqual(['PodSandboxStatus', 'StopPodSandbox', 'RemovePodSandbox']);
  });

  it('removes a stopped pod, and a missing one without error', async () => {
    fake.on('PodSandboxStatus', (req) => {
      if (req.pod_sandbox_id === ID_B) throw fail(grpc.status.NOT_FOUND, 'no such pod');
      return { status: pod(ID_A, 'p', 'd', 1, 'SANDBOX_NOTREADY') };
    });
    fake.on('RemovePodSandbox', () => ({}));
    const r = await ctl('rmp', ID_A, ID_B);
    expect(r.code).toBe(0);
    expect(fake.methods()).toEqual([
      'PodSandboxStatus',
      'RemovePodSandbox',
      'PodSandboxStatus',
      'RemovePodSandbox',
    ]);
  });

  it('--all removes every listed pod and refuses ids with it', async () => {
    fake.on('ListPodSandbox', () => ({
      items: [pod(ID_A, 'a', 'd', 1, 'SANDBOX_NOTREADY'), pod(ID_B, 'b', 'd', 1)],
    }));
    fake.on('PodSandboxStatus', (req) => ({
      status: pod(
        req.pod_sandbox_id as string,
        'p',
        'd',
        1,
        req.pod_sandbox_id === ID_A ? 'SANDBOX_NOTREADY' : 'SANDBOX_READY',
      ),
    }));
    fake.on('StopPodSandbox', () => ({}));
    fake.on('RemovePodSandbox', () => ({}));
    expect((await ctl('rmp', '-a', ID_A)).code).toBe(2);
    const r = await ctl('rmp', '-af');
    expect(r.out).toBe(`Removed sandbox ${ID_A}\nRemoved sandbox ${ID_B}\n`);
    expect(fake.calls.filter((c) => c.method === 'StopPodSandbox').map((c) => c.req.pod_sandbox_id)).toEqual([
      ID_B,
    ]);
  });
});
