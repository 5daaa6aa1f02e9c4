// The parts of berthctl play's sync that need no runtime: restart rules and back-off, probes over
// real loopback sockets, CRI log tails, the --dry-run request list, hostPath type checks.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CriClients } from '../../api/client';
import { podsFromDocuments } from './manifest';
import { probeTiming, resolvePort, runProbe } from './probe';
import { nextBackoff, shouldRestart } from './restart';
import { dryRunRequests, logTail } from './runner';
import type { NodeInfo } from './translate';
import { checkHostPath } from './volumes-apply';

const node: NodeInfo = {
  name: 'node1',
  hostIP: '192.0.2.10',
  memoryCapacity: 2 ** 33,
  cpuMilli: 2000,
  resolv: { servers: [], searches: [], options: [] },
  podsDir: '/pods',
};
const noConfig = { configMap: () => undefined, secret: () => undefined };
const noCri = {} as CriClients;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'play-parts-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('restarts (kubelet)', () => {
  const app = { init: false, sidecar: false };
  test.each([
    ['Always', 0, true],
    ['Always', 1, true],
    ['OnFailure', 0, false],
    ['OnFailure', 2, true],
    ['Never', 2, false],
  ])('app container, restartPolicy %s, exit %d: restart %s', (policy, code, want) => {
    expect(shouldRestart(policy as string, app, code as number)).toBe(want);
  });
  test('init containers: failed ones restart unless Never; sidecars always', () => {
    expect(shouldRestart('Always', { init: true, sidecar: false }, 0)).toBe(false);
    expect(shouldRestart('OnFailure', { init: true, sidecar: false }, 1)).toBe(true);
    expect(shouldRestart('Never', { init: true, sidecar: false }, 1)).toBe(false);
    expect(shouldRestart('Never', { init: true, sidecar: true }, 0)).toBe(true);
  });
  test('back-off: at once, then 10 s doubling up to 5 min', () => {
    const seq: number[] = [];
    let b = 0;
    for (let i = 0; i < 8; i++) {
      seq.push(b);
      b = nextBackoff(b);
    }
    expect(seq).toEqual([0, 10, 20, 40, 80, 160, 300, 300]);
  });
});

describe('probes', () => {
  const ctr = { name: 'web', image: 'x', ports: [{ name: 'http', containerPort: 8080 }] };
  test('named and numbered ports', () => {
    expect(resolvePort('http', ctr)).toBe(8080);
    expect(resolvePort(81, ctr)).toBe(81);
    expect(resolvePort('82', ctr)).toBe(82);
    expect(() => resolvePort('nope', ctr)).toThrow(/not a named port of container web/);
  });
  test('Kubernetes defaults: period 10 s, timeout 1 s, success 1, failure 3', () => {
    expect(probeTiming({})).toEqual({
      initialDelayMs: 0,
      periodMs: 10000,
      timeoutS: 1,
      success: 1,
      failure: 3,
    });
  });
  test('httpGet: 2xx/3xx succeed, others fail; path and headers sent; tcpSocket connects', async () => {
    const seen: string[] = [];
    const srv = http.createServer((req, res) => {
      seen.push(`${req.url} ${req.headers['x-probe']}`);
      res.statusCode = req.url === '/ok' ? 200 : req.url === '/moved' ? 302 : 500;
      res.end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const get = (p: string): Promise<{ ok: boolean; message: string }> =>
        runProbe(
          noCri,
          { httpGet: { path: p, port, httpHeaders: [{ name: 'X-Probe', value: 'yes' }] } },
          ctr,
          'id',
          '127.0.0.1',
        );
      expect((await get('/ok')).ok).toBe(true);
      expect((await get('/moved')).ok).toBe(true);
      expect(await get('/bad')).toEqual({ ok: false, message: 'HTTP probe failed with statuscode: 500' });
      expect(seen).toEqual(['/ok yes', '/moved yes', '/bad yes']);
      expect((await runProbe(noCri, { tcpSocket: { port } }, ctr, 'id', '127.0.0.1')).ok).toBe(true);
    } finally {
      await new Promise((r) => srv.close(r));
    }
    const closed = await runProbe(noCri, { tcpSocket: { port } }, ctr, 'id', '127.0.0.1');
    expect(closed.ok).toBe(false);
    expect(closed.message).toMatch(/ECONNREFUSED/);
    expect((await runProbe(noCri, { grpc: { port } }, ctr, 'id', '127.0.0.1')).message).toMatch(
      /not supported/,
    );
  });
});

test('logTail: the last lines of a CRI log, partial lines joined', async () => {
  const f = path.join(tmp, '0.log');
  fs.writeFileSync(
    f,
    [
      '2026-12-07T00:00:00.000000000Z stdout F one',
      '2026-12-07T00:00:00.000000001Z stderr P tw',
      '2026-12-07T00:00:00.000000002Z stderr F o',
      '2026-12-07T00:00:00.000000003Z stdout F ',
      '2026-12-07T00:00:00.000000004Z stdout F three',
      '',
    ].join('\n'),
  );
  expect(await logTail(f, 3)).toEqual(['two', '', 'three']);
  expect(await logTail(path.join(tmp, 'missing.log'))).toEqual([]);
});

test('--dry-run: kubelet-ordered requests, pulls per policy, the init container waited for', () => {
  const [pp] = podsFromDocuments([
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: {
        initContainers: [{ name: 'init', image: 'busybox:1', imagePullPolicy: 'Never' }],
        containers: [
          {
            name: 'app',
            image: 'busybox',
            env: [{ name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
          },
        ],
      },
    },
  ]);
  const reqs = dryRunRequests(pp, { node, config: noConfig, event: () => undefined });
  expect(reqs.map((r) => [r.method, r.note ?? ''])).toEqual([
    ['RunPodSandbox', ''],
    ['CreateContainer', ''],
    ['StartContainer', 'then wait for it to exit 0 before the next container'],
    ['PullImage', ''], // busybox = :latest → Always
    ['CreateContainer', ''],
    ['StartContainer', ''],
  ]);
  const create = reqs[4].request as { config: { envs: { key: string; value: string }[] } };
  expect(create.config.envs).toEqual([{ key: 'IP', value: '<pod IP>' }]);
});

test('--dry-run: image volumes pulled per pullPolicy after the sandbox, before the containers, and mounted', () => {
  const [pp] = podsFromDocuments([
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: {
        containers: [
          {
            name: 'app',
            image: 'busybox:1',
            volumeMounts: [{ name: 'data', mountPath: '/data', subPath: 'sub', readOnly: false }],
          },
        ],
        volumes: [
          { name: 'data', image: { reference: 'lab/data' } },
          { name: 'pinned', image: { reference: 'lab/data:v1' } },
          { name: 'local', image: { reference: 'lab/data:v2', pullPolicy: 'Never' } },
        ],
      },
    },
  ]);
  const reqs = dryRunRequests(pp, { node, config: noConfig, event: () => undefined });
  expect(reqs.map((r) => [r.method, r.note ?? ''])).toEqual([
    ['RunPodSandbox', ''],
    ['PullImage', 'image volume data; mounts name the image id it returns'],
    [
      'PullImage',
      'image volume pinned, only when ImageStatus does not find the image; mounts name the image id it returns',
    ],
    ['PullImage', 'only when ImageStatus does not find the image'],
    ['CreateContainer', ''],
    ['StartContainer', ''],
  ]);
  expect((reqs[1].request as { image: { image: string } }).image.image).toBe('lab/data');
  const create = reqs[4].request as { config: { mounts: object[] } };
  expect(create.config.mounts[0]).toEqual({
    container_path: '/data',
    host_path: '',
    image: { image: 'lab/data', user_specified_image: 'lab/data' },
    image_sub_path: 'sub',
    readonly: true,
    propagation: 'PROPAGATION_PRIVATE',
  });
});

describe('hostPath type checks', () => {
  test('Directory/File must exist as such; DirectoryOrCreate/FileOrCreate create', async () => {
    await expect(checkHostPath('v', path.join(tmp, 'nope'), 'Directory')).rejects.toThrow(
      /volume "v": hostPath .*nope does not exist; want a directory/,
    );
    fs.writeFileSync(path.join(tmp, 'file'), 'x');
    await expect(checkHostPath('v', path.join(tmp, 'file'), 'Directory')).rejects.toThrow(
      /is not a directory/,
    );
    await expect(checkHostPath('v', path.join(tmp, 'file'), 'File')).resolves.toBeUndefined();
    await expect(checkHostPath('v', tmp, 'Socket')).rejects.toThrow(/is not a socket/);
    await checkHostPath('v', path.join(tmp, 'made', 'dir'), 'DirectoryOrCreate');
    expect(fs.statSync(path.join(tmp, 'made', 'dir')).isDirectory()).toBe(true);
    await checkHostPath('v', path.join(tmp, 'newfile'), 'FileOrCreate');
    expect(fs.readFileSync(path.join(tmp, 'newfile'), 'utf8')).toBe('');
    await expect(checkHostPath('v', path.join(tmp, 'whatever'), '')).resolves.toBeUndefined();
  });
});
