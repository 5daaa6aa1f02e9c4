import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { fail, sink, startFakeCri, type FakeCri, type Req } from '../../test/lab/fake-cri';
import { run } from './main';

const POD = 'd'.repeat(4) + 'e'.repeat(60);
const C1 = 'c'.repeat(63) + '1';
const C2 = 'c'.repeat(63) + '2';
const IMG = 'sha256:' + 'f'.repeat(64);
const NOW_NS = BigInt(Date.now()) * 1_000_000n;

function ctr(id: string, name: string, state: string, ageSec: number, podName = 'web', ns = 'default') {
  return {
    id,
    pod_sandbox_id: POD,
    metadata: { name, attempt: 2 },
    image: { image: IMG },
    image_ref: 'docker.io/library/busybox@sha256:' + '1'.repeat(64),
    state,
    created_at: (NOW_NS - BigInt(ageSec) * 1_000_000_000n).toString(),
    labels: { 'io.kubernetes.pod.name': podName, 'io.kubernetes.pod.namespace': ns },
    annotations: {},
  };
}

let fake: FakeCri;
let podFile: string;
let ctrFile: string;
const ctl = async (...argv: string[]) => {
  const out = sink();
  const err = sink();
  const code = await run(['--endpoint', fake.endpoint, ...argv], out, err);
  return { code, out: out.text, err: err.text };
};

beforeEach(async () => {
  fake = await startFakeCri();
  podFile = path.join(fake.dir, 'pod.json');
  ctrFile = path.join(fake.dir, 'ctr.yaml');
  await fs.promises.writeFile(
    podFile,
    JSON.stringify({ metadata: { name: 'web', namespace: 'default', uid: 'u' } }),
  );
  await fs.promises.writeFile(
    ctrFile,
    'metadata: {name: c}\nimage: {image: "busybox:1"}\ncommand: [sleep, "9"]\n' +
      'mounts: [{container_path: /data, host_path: /tmp, readonly: true, propagation: 1}]\n' +
      'envs: [{key: A, value: b}]\nlog_path: c.log\n',
  );
});
afterEach(async () => {
  await fake.close();
});

type CreateReq = {
  pod_sandbox_id: string;
  config: {
    image: { image: string; user_specified_image: string };
    command: string[];
    mounts: { propagation: string; readonly: boolean }[];
    envs: { key: string; value: string }[];
  };
  sandbox_config: { metadata: { name: string } };
};

describe('create', () => {
  it('sends pod id, container config and pod config, prints the id', async () => {
    fake.on('CreateContainer', () => ({ container_id: C1 }));
    const r = await ctl('create', POD, ctrFile, podFile);
    expect(r).toEqual({ code: 0, out: `${C1}\n`, err: '' });
    expect(fake.methods()).toEqual(['CreateContainer']);
    const req = fake.calls[0].req as CreateReq;
    expect(req.pod_sandbox_id).toBe(POD);
    expect(req.config.image).toMatchObject({ image: 'busybox:1', user_specified_image: 'busybox:1' });
    expect(req.config.command).toEqual(['sleep', '9']);
    expect(req.config.mounts[0]).toMatchObject({
      propagation: 'PROPAGATION_HOST_TO_CONTAINER',
      readonly: true,
    });
    expect(req.config.envs).toEqual([{ key: 'A', value: Buffer.from('b') }]);
    expect(req.sandbox_config.metadata.name).toBe('web');
  });

  it('--pull pulls a missing image first, with the sandbox config and creds', async () => {
    fake.on('ImageStatus', () => ({ image: null }));
    fake.on('PullImage', () => ({ image_ref: 'sha256:x' }));
    fake.on('CreateContainer', () => ({ container_id: C1 }));
    expect((await ctl('create', '--pull', '--creds', 'u:p:w', POD, ctrFile, podFile)).code).toBe(0);
    expect(fake.methods()).toEqual(['ImageStatus', 'PullImage', 'CreateContainer']);
    expect(fake.calls[1].req).toMatchObject({
      image: { image: 'busybox:1' },
      auth: { username: 'u', password: 'p:w' },
      sandbox_config: { metadata: { name: 'web' } },
    });
  });

  it('--pull skips the pull when the image is there', async () => {
    fake.on('ImageStatus', () => ({ image: { id: IMG, repo_tags: ['busybox:1'] } }));
    fake.on('CreateContainer', () => ({ container_id: C1 }));
    expect((await ctl('create', '--with-pull', POD, ctrFile, podFile)).code).toBe(0);
    expect(fake.methods()).toEqual(['ImageStatus', 'CreateContainer']);
  });

  it('wants exactly three arguments', async () => {
    expect((await ctl('create', POD, ctrFile)).code).toBe(2);
    expect((await ctl('create', '--pull', '--no-pull', POD, ctrFile, podFile)).code).toBe(2);
  });
});

describe('run', () => {
  beforeEach(() => {
    fake.on('ImageStatus', () => ({ image: { id: IMG } }));
    fake.on('RunPodSandbox', () => ({ pod_sandbox_id: POD }));
    fake.on('CreateContainer', () => ({ container_id: C1 }));
  });

  it('runs pod, creates and starts the container, prints its id', async () => {
    fake.on('StartContainer', () => ({}));
    const r = await ctl('run', '-r', 'crun', ctrFile, podFile);
    expect(r).toEqual({ code: 0, out: `${C1}\n`, err: '' });
    expect(fake.methods()).toEqual(['ImageStatus', 'RunPodSandbox', 'CreateContainer', 'StartContainer']);
    expect(fake.calls[1].req.runtime_handler).toBe('crun');
    expect(fake.calls[2].req.pod_sandbox_id).toBe(POD);
    expect(fake.calls[3].req).toEqual({ container_id: C1 });
  });

  it('pulls when missing, and not at all with --no-pull', async () => {
    fake.on('ImageStatus', () => ({ image: null }));
    fake.on('PullImage', () => ({ image_ref: IMG }));
    fake.on('StartContainer', () => ({}));
    await ctl('run', ctrFile, podFile);
    expect(fake.methods()).toEqual([
      'ImageStatus',
      'PullImage',
      'RunPodSandbox',
      'CreateContainer',
      'StartContainer',
    ]);
    fake.calls.length = 0;
    await ctl('run', '--no-pull', ctrFile, podFile);
    expect(fake.methods()).toEqual(['RunPodSandbox', 'CreateContainer', 'StartContainer']);
  });

  it('removes the pod it made when the container fails to start', async () => {
    fake.on('StartContainer', () => {
      throw fail(grpc.status.UNKNOWN, 'runc start failed: exec: "sleep": not found');
    });
    fake.on('StopPodSandbox', () => ({}));
    fake.on('RemovePodSandbox', () => ({}));
    const r = await ctl('run', ctrFile, podFile);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`removed pod ${POD}`);
    expect(r.err).toContain('runc start failed');
    expect(fake.methods().slice(-2)).toEqual(['StopPodSandbox', 'RemovePodSandbox']);
  });
});

describe('start, stop, rm', () => {
  it('start and stop print each id; stop defaults to timeout 0 like crictl', async () => {
    fake.on('StartContainer', () => ({}));
    fake.on('StopContainer', () => ({}));
    expect((await ctl('start', C1, C2)).out).toBe(`${C1}\n${C2}\n`);
    await ctl('stop', C1);
    await ctl('stop', '-t', '5', C2);
    await ctl('stop', '--timeout=7', C2);
    expect(fake.calls.filter((c) => c.method === 'StopContainer').map((c) => c.req.timeout)).toEqual([
      '0',
      '5',
      '7',
    ]);
    expect((await ctl('stop', '-t', 'x', C1)).code).toBe(2);
  });

  it('stop --all stops the running ones', async () => {
    fake.on('ListContainers', () => ({ containers: [ctr(C1, 'a', 'CONTAINER_RUNNING', 1)] }));
    fake.on('StopContainer', () => ({}));
    expect((await ctl('stop', '-a')).out).toBe(`${C1}\n`);
    expect(fake.calls[0].req).toMatchObject({ filter: { state: { state: 'CONTAINER_RUNNING' } } });
    fake.on('ListContainers', () => ({ containers: [] }));
    expect((await ctl('stop', '--all')).out).toBe('No running containers found.\n');
  });

  it('rm refuses a running container without -f; -f stops it at once; logs go unless -k', async () => {
    const logDir = path.join(fake.dir, 'logs');
    await fs.promises.mkdir(logDir);
    const logPath = path.join(logDir, 'c.log');
    for (const f of ['c.log', 'c.log.20240101-000000', 'c.log.1.gz', 'other.log']) {
      await fs.promises.writeFile(path.join(logDir, f), 'x');
    }
    let state = 'CONTAINER_RUNNING';
    fake.on('ContainerStatus', (req) => ({
      status: { ...ctr(req.container_id as string, 'c', state, 1), log_path: logPath },
    }));
    fake.on('StopContainer', () => {
      state = 'CONTAINER_EXITED';
      return {};
    });
    fake.on('RemoveContainer', () => ({}));
    const r1 = await ctl('rm', C1);
    expect(r1.code).toBe(1);
    expect(r1.err).toContain('is running, stop it first or use -f');
    expect(fake.methods()).toEqual(['ContainerStatus']);
    expect((await ctl('rm', '-f', '-k', C1)).out).toBe(`${C1}\n`);
    expect(fake.calls.find((c) => c.method === 'StopContainer')?.req).toEqual({
      container_id: C1,
      timeout: '0',
    });
    expect((await fs.promises.readdir(logDir)).length).toBe(4);
    expect((await ctl('rm', C1)).code).toBe(0);
    expect(await fs.promises.readdir(logDir)).toEqual(['other.log']);
  });

  it('rm of a container the server no longer knows still calls RemoveContainer', async () => {
    fake.on('ContainerStatus', () => {
      throw fail(grpc.status.NOT_FOUND, 'no such container');
    });
    fake.on('RemoveContainer', () => ({}));
    expect((await ctl('rm', C1)).code).toBe(0);
    expect(fake.methods()).toEqual(['ContainerStatus', 'RemoveContainer']);
  });
});

describe('ps', () => {
  beforeEach(() => {
    fake.on('ListContainers', (req: Req) => {
      const all = [
        ctr(C1, 'app', 'CONTAINER_RUNNING', 30),
        ctr(C2, 'sidecar', 'CONTAINER_EXITED', 5, 'db', 'prod'),
      ];
      const f = req.filter as { state: { state: string } | null } | null;
      return { containers: f?.state ? all.filter((x) => x.state === f.state?.state) : all };
    });
    fake.on('ListPodSandbox', () => ({ items: [{ id: POD }] }));
  });

  it('lists running containers by default, as a table', async () => {
    const r = await ctl('ps');
    expect(fake.calls[0].req).toEqual({
      filter: { id: '', state: { state: 'CONTAINER_RUNNING' }, pod_sandbox_id: '', label_selector: {} },
    });
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual([
      'CONTAINER',
      'IMAGE',
      'CREATED',
      'STATE',
      'NAME',
      'ATTEMPT',
      'POD ID',
      'POD',
      'NAMESPACE',
    ]);
    expect(lines[1].split(/\s{2,}/)).toEqual([
      C1.slice(0, 13),
      'f'.repeat(13),
      expect.stringMatching(/^[34][0-9] seconds ago$/), // NOW_NS was taken at load: seconds may pass on a busy machine
      'Running',
      'app',
      '2',
      POD.slice(0, 13),
      'web',
      'default',
    ]);
    expect(lines.length).toBe(2);
  });

  it('-a lists all, newest first; --state, --pod, --label, --name, --namespace filter', async () => {
    expect((await ctl('ps', '-aq')).out).toBe(`${C2}\n${C1}\n`);
    expect(fake.calls[0].req.filter).toMatchObject({ state: null });
    fake.calls.length = 0;
    await ctl('ps', '--state', 'Exited', '-p', 'dddd', '--label', 'k=v', '--id', 'cc');
    expect(fake.calls.map((c) => c.method)).toEqual(['ListPodSandbox', 'ListContainers']);
    expect(fake.calls[1].req.filter).toEqual({
      id: 'cc',
      state: { state: 'CONTAINER_EXITED' },
      pod_sandbox_id: POD,
      label_selector: { k: 'v' },
    });
    expect((await ctl('ps', '-a', '-q', '--name', 'side')).out).toBe(`${C2}\n`);
    expect((await ctl('ps', '-a', '-q', '--namespace', '^default$')).out).toBe(`${C1}\n`);
    expect((await ctl('ps', '-q', '-l')).out).toBe(`${C2}\n`);
  });

  it('prints JSON and full ids', async () => {
    const j = JSON.parse((await ctl('ps', '-a', '-o', 'json')).out) as { containers: { id: string }[] };
    expect(j.containers.map((x) => x.id)).toEqual([C2, C1]);
    const r = await ctl('ps', '--no-trunc');
    expect(r.out).toContain(C1);
    expect(r.out).toContain(IMG);
  });

  it('rejects a bad state', async () => {
    expect(await ctl('ps', '--state', 'paused')).toMatchObject({
      code: 2,
      err: expect.stringContaining('--state'),
    });
  });
});

describe('inspect', () => {
  it('shows verbose status with readable times and parsed info', async () => {
    fake.on('ContainerStatus', (req) => ({
      status: {
        ...ctr(req.container_id as string, 'c', 'CONTAINER_EXITED', 1),
        created_at: '1700000000000000000',
        started_at: '1700000001500000000',
        finished_at: '1700000002000000001',
        exit_code: 137,
        reason: 'OOMKilled',
      },
      info: { info: '{"pid":0}' },
    }));
    const r = await ctl('inspect', C1);
    const doc = JSON.parse(r.out) as { status: Record<string, unknown>; info: unknown };
    expect(doc.status).toMatchObject({
      id: C1,
      created_at: '2023-11-14T22:13:20Z',
      started_at: '2023-11-14T22:13:21.5Z',
      finished_at: '2023-11-14T22:13:22.000000001Z',
      exit_code: 137,
      reason: 'OOMKilled',
      state: 'CONTAINER_EXITED',
    });
    expect(doc.info).toEqual({ info: { pid: 0 } });
    expect(fake.calls[0].req).toEqual({ container_id: C1, verbose: true });
    expect(doc).not.toHaveProperty('imageVolumes');
  });

  it('lists image volumes with their image and sub-path', async () => {
    const image = {
      image: 'reg/models:v1',
      annotations: {},
      user_specified_image: '',
      runtime_handler: '',
      image_ref: '',
    };
    fake.on('ContainerStatus', (req) => ({
      status: {
        ...ctr(req.container_id as string, 'c', 'CONTAINER_RUNNING', 1),
        mounts: [
          { container_path: '/data', host_path: '/srv/data', readonly: false },
          { container_path: '/models', image, image_sub_path: 'weights/small', readonly: true },
        ],
      },
      info: {},
    }));
    const r = await ctl('inspect', '-o', 'yaml', C1);
    expect(r.out).toMatch(
      /imageVolumes:\n {2}- containerPath: \/models\n {4}image: reg\/models:v1\n {4}subPath: weights\/small\n {4}readonly: true\n/,
    );
  });
});

describe('exec', () => {
  it('passes the command through untouched and returns its exit code', async () => {
    fake.on('ExecSync', () => ({
      stdout: Buffer.from('out line\n'),
      stderr: Buffer.from('err line\n'),
      exit_code: 3,
    }));
    const r = await ctl('exec', '-s', '--timeout', '5', C1, 'sh', '-c', 'echo hi; exit 3');
    expect(r).toEqual({ code: 3, out: 'out line\n', err: 'err line\n' });
    expect(fake.calls[0].req).toEqual({
      container_id: C1,
      cmd: ['sh', '-c', 'echo hi; exit 3'],
      timeout: '5',
    });
  });

  it('exit code 0 when the command succeeds; `--` ends the flags', async () => {
    fake.on('ExecSync', () => ({ stdout: Buffer.from('x'), stderr: Buffer.alloc(0), exit_code: 0 }));
    expect(await ctl('exec', '--', C1, '-v')).toEqual({ code: 0, out: 'x', err: '' });
    expect(fake.calls[0].req.cmd).toEqual(['-v']);
  });

  it('-it asks the Exec RPC for a tty session with stdin and no stderr', async () => {
    fake.on('Exec', () => {
      throw fail(grpc.status.FAILED_PRECONDITION, 'container is not running');
    });
    const r = await ctl('exec', '-it', '--transport', 'websocket', C1, 'sh', '-l');
    expect(r).toMatchObject({ code: 1, err: 'berthctl exec: container is not running\n' });
    expect(fake.calls[0]).toEqual({
      method: 'Exec',
      req: { container_id: C1, cmd: ['sh', '-l'], tty: true, stdin: true, stdout: true, stderr: false },
    });
  });

  it('-i alone keeps stderr separate and no tty', async () => {
    fake.on('Exec', () => {
      throw fail(grpc.status.NOT_FOUND, 'no such container');
    });
    expect((await ctl('exec', '-i', C1, 'cat')).code).toBe(1);
    expect(fake.calls[0].req).toMatchObject({ tty: false, stdin: true, stdout: true, stderr: true });
  });

  it('reports the server error', async () => {
    fake.on('ExecSync', () => {
      throw fail(grpc.status.FAILED_PRECONDITION, 'container is not running');
    });
    expect(await ctl('exec', C1, 'true')).toMatchObject({
      code: 1,
      err: 'berthctl exec: container is not running\n',
    });
  });
});
