// What any CRI client meets on the socket of a real berthd: a raw HTTP/2 client sending the
// socket path, its %-encoded form, localhost, an empty or no :authority (as crictl, kubelet and the
// C-core/Java stacks do) gets real answers; bytes that are no request answer INVALID_ARGUMENT on
// every RPC; resource values runc or the kernel would refuse are INVALID_ARGUMENT before runc runs.
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { call } from '../../api/client';
import { loadCri, protoPath } from '../../api/proto';
import { startHarness, type Harness } from '../lab/harness';
import { rawGrpcCalls } from '../lab/h2raw';

const Status = grpc.status;
let h: Harness;
const root = new protobuf.Root().loadSync(protoPath(), { keepCase: true });

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthgr0', subnet: '10.241.0.0/24', prefix: 'gc' });
}, 180_000);

afterAll(async () => {
  await h?.cleanup();
});

describe('any :authority on the unix socket', () => {
  const versionReq = Buffer.from(
    root.lookupType('runtime.v1.VersionRequest').encode({ version: 'v1' }).finish(),
  );
  const VersionResponse = root.lookupType('runtime.v1.VersionResponse');
  const ListImagesRequest = root.lookupType('runtime.v1.ListImagesRequest');
  const ListImagesResponse = root.lookupType('runtime.v1.ListImagesResponse');

  test('the path, its %-encoded form, localhost, empty and none each get a real answer', async () => {
    const sock = h.d.socket;
    const authorities = [sock, encodeURIComponent(sock), 'localhost', '', null];
    const version = { path: '/runtime.v1.RuntimeService/Version', message: versionReq };
    const images = {
      path: '/runtime.v1.ImageService/ListImages',
      message: Buffer.from(ListImagesRequest.encode({}).finish()),
    };
    // each on its own connection, then all on one (the client's HPACK table indexing the path)
    const replies = [];
    for (const authority of authorities)
      replies.push(...(await rawGrpcCalls(sock, [{ ...version, authority }])));
    replies.push(
      ...(await rawGrpcCalls(sock, [
        ...authorities.map((authority) => ({ ...version, authority })),
        ...authorities.map((authority) => ({ ...images, authority })),
      ])),
    );
    const expected = VersionResponse.toObject(VersionResponse.decode(replies[0].message!));
    expect(expected).toMatchObject({ version: '0.1.0', runtime_name: 'berth', runtime_api_version: 'v1' });
    for (const [i, r] of replies.entries()) {
      expect({ i, httpStatus: r.httpStatus, grpcStatus: r.grpcStatus, rst: r.rstCode }).toEqual({
        i,
        httpStatus: '200',
        grpcStatus: 0,
        rst: undefined,
      });
      if (i < authorities.length * 2) {
        expect(VersionResponse.toObject(VersionResponse.decode(r.message!))).toEqual(expected);
      } else {
        const list = ListImagesResponse.toObject(ListImagesResponse.decode(r.message!)) as {
          images: Array<{ repo_tags: string[] }>;
        };
        expect(list.images.some((im) => im.repo_tags.includes(h.busybox))).toBe(true);
      }
    }
  });

  test('a client that waits for the server preface (as grpc-go does) is answered, either authority', async () => {
    // berthd sends its own SETTINGS first, then nghttp2's follow: the client acks both, and each
    // path (straight to nghttp2 for localhost, the rewriter for the path) must take exactly one
    const version = { path: '/runtime.v1.RuntimeService/Version', message: versionReq };
    for (const authority of ['localhost', h.d.socket]) {
      const replies = await rawGrpcCalls(
        h.d.socket,
        [
          { ...version, authority },
          { ...version, authority },
        ],
        15000,
        {
          waitForServerSettings: true,
        },
      );
      for (const r of replies) expect(r).toMatchObject({ httpStatus: '200', grpcStatus: 0 });
      expect(VersionResponse.toObject(VersionResponse.decode(replies[1].message!))).toMatchObject({
        runtime_name: 'berth',
      });
    }
  });

  test('a call with the socket path as authority fails the same way as with localhost', async () => {
    const [r] = await rawGrpcCalls(h.d.socket, [
      {
        path: '/runtime.v1.RuntimeService/ContainerStatus',
        authority: h.d.socket,
        message: Buffer.from(
          root.lookupType('runtime.v1.ContainerStatusRequest').encode({ container_id: 'nope' }).finish(),
        ),
      },
    ]);
    expect(r).toMatchObject({ httpStatus: '200', grpcStatus: Status.NOT_FOUND });
  });
});

describe('undecodable requests', () => {
  test('every RPC answers INVALID_ARGUMENT naming its request type', async () => {
    const cri = loadCri();
    const client = new grpc.Client(`unix:${h.d.socket}`, grpc.credentials.createInsecure());
    try {
      const services = [cri.runtime.v1.RuntimeService.service, cri.runtime.v1.ImageService.service];
      for (const svc of services) {
        for (const m of Object.values(svc)) {
          const typeName = (m as unknown as { requestType: { type: { name: string } } }).requestType.type
            .name;
          for (const bytes of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from([0x0a, 0x7f, 0x41])]) {
            const err = await new Promise<grpc.ServiceError | null>((resolve) => {
              const done = (e: grpc.ServiceError | null): void => resolve(e);
              if (m.responseStream) {
                const s = client.makeServerStreamRequest(
                  m.path,
                  (x: Buffer) => x,
                  (b: Buffer) => b,
                  bytes,
                );
                s.on('data', () => undefined);
                s.on('error', done);
                s.on('end', () => done(null));
              } else {
                client.makeUnaryRequest(
                  m.path,
                  (x: Buffer) => x,
                  (b: Buffer) => b,
                  bytes,
                  (e) => done(e),
                );
              }
            });
            expect({ path: m.path, code: err?.code, details: err?.details }).toEqual({
              path: m.path,
              code: Status.INVALID_ARGUMENT,
              details: expect.stringMatching(new RegExp(`^cannot decode ${typeName}: `)),
            });
          }
        }
      }
    } finally {
      client.close();
    }
  });
});

describe('values runc or the kernel refuse', () => {
  test('RunPodSandbox with a sysctl the pod does not have, or a value the kernel refuses', async () => {
    for (const [sysctls, why] of [
      [{ 'net.nonexistent.foo': '1' }, /sysctl net\.nonexistent\.foo does not exist/],
      [{ 'kernel.shm_rmid_forced': 'abc' }, /refuses the value of sysctl kernel\.shm_rmid_forced/],
    ] as Array<[Record<string, string>, RegExp]>) {
      const err = await call(h.d.clients.runtime, 'RunPodSandbox', {
        config: h.podConfig({ linux: { sysctls } }),
      }).catch((e: grpc.ServiceError) => e);
      expect({ sysctls, code: (err as grpc.ServiceError).code }).toEqual({
        sysctls,
        code: Status.INVALID_ARGUMENT,
      });
      expect((err as grpc.ServiceError).details).toMatch(why);
    }
    expect(
      (await call(h.d.clients.runtime, 'ListPodSandbox', {})).items.filter(
        (p) => p.state === 'SANDBOX_READY',
      ),
    ).toEqual([]);
  }, 120_000);

  const cpuFile = (id: string, f: string): number =>
    Number(fs.readFileSync(`/sys/fs/cgroup/cpu/berth/berth-${id}/${f}`, 'utf8').trim());

  test('UpdateContainerResources refuses them with INVALID_ARGUMENT and keeps the old limits', async () => {
    const pod = h.podConfig();
    const podId = await h.runPod(pod);
    try {
      const id = await h.startCtr(
        podId,
        pod,
        h.ctrConfig('res', ['sleep', '3600'], {
          linux: { resources: { cpu_shares: '512', cpu_quota: '50000', cpu_period: '100000' } },
        }),
      );
      const bad: Array<[Record<string, unknown>, RegExp]> = [
        [{ cpu_shares: '262145' }, /cpu_shares 262145 is outside 2\.\.262144/],
        [{ cpu_shares: '1' }, /cpu_shares 1 is outside 2\.\.262144/],
        [{ cpu_quota: '500' }, /cpu_quota 500/],
        [{ cpu_quota: '-7' }, /cpu_quota -7/],
        [{ cpu_period: '999' }, /cpu_period 999 is outside 1000\.\.1000000/],
        [{ cpu_period: '2000000' }, /cpu_period 2000000 is outside 1000\.\.1000000/],
        [{ memory_limit_in_bytes: '-5' }, /memory_limit_in_bytes/],
        [
          { memory_limit_in_bytes: String(64 << 20), memory_swap_limit_in_bytes: String(32 << 20) },
          /memory_swap_limit_in_bytes .* below memory_limit_in_bytes/,
        ],
        [{ memory_swap_limit_in_bytes: String(64 << 20) }, /without memory_limit_in_bytes/],
        [{ cpuset_cpus: '0-abc' }, /cpuset_cpus/],
        [{ cpuset_cpus: '4096' }, /cpuset_cpus/],
        [{ hugepage_limits: [{ page_size: '3MB', limit: '0' }] }, /page_size 3MB/],
        [{ hugepage_limits: [{ page_size: '2MB', limit: '-1' }] }, /hugepage_limits\[2MB\]/],
        [{ unified: { 'memory.nonexistent': '1' } }, /unified/],
        [{ unified: { 'nosuchcontroller.max': '1' } }, /unified/],
      ];
      for (const [linux, why] of bad) {
        const err = await call(h.d.clients.runtime, 'UpdateContainerResources', {
          container_id: id,
          linux,
        }).catch((e: grpc.ServiceError) => e);
        expect({ linux, code: (err as grpc.ServiceError).code }).toEqual({
          linux,
          code: Status.INVALID_ARGUMENT,
        });
        expect((err as grpc.ServiceError).details).toMatch(why);
      }
      expect(cpuFile(id, 'cpu.shares')).toBe(512);
      expect(cpuFile(id, 'cpu.cfs_quota_us')).toBe(50000);
      expect(cpuFile(id, 'cpu.cfs_period_us')).toBe(100000);
      // the edges themselves are taken
      await call(h.d.clients.runtime, 'UpdateContainerResources', {
        container_id: id,
        linux: { cpu_shares: '262144', cpu_quota: '1000', cpu_period: '1000' },
      });
      expect(cpuFile(id, 'cpu.shares')).toBe(262144);
      expect(cpuFile(id, 'cpu.cfs_quota_us')).toBe(1000);
      expect(cpuFile(id, 'cpu.cfs_period_us')).toBe(1000);
      await call(h.d.clients.runtime, 'UpdateContainerResources', {
        container_id: id,
        linux: { cpu_shares: '2', cpu_quota: '-1', cpu_period: '1000000' },
      });
      expect(cpuFile(id, 'cpu.shares')).toBe(2);
      expect(cpuFile(id, 'cpu.cfs_quota_us')).toBe(-1);
      expect(cpuFile(id, 'cpu.cfs_period_us')).toBe(1000000);
      expect((await h.exec(id, ['echo', 'ok'])).out).toBe('ok\n');
      // a timeout longer than a Node timer holds is no timeout, not an immediate one
      const long = await call(h.d.clients.runtime, 'ExecSync', {
        container_id: id,
        cmd: ['echo', 'long'],
        timeout: '99999999999',
      });
      expect({ code: long.exit_code, out: Buffer.from(long.stdout).toString() }).toEqual({
        code: 0,
        out: 'long\n',
      });
      // ExecSync of a command the image does not have
      const ex = await call(h.d.clients.runtime, 'ExecSync', {
        container_id: id,
        cmd: ['/nonexistent'],
        timeout: 5,
      }).catch((e: grpc.ServiceError) => e);
      expect((ex as grpc.ServiceError).code).toBe(Status.INVALID_ARGUMENT);
      expect((ex as grpc.ServiceError).details).toMatch(/the command "\/nonexistent" cannot be run/);
    } finally {
      await h.removePod(podId);
    }
  }, 120_000);

  test('CreateContainer refuses them with INVALID_ARGUMENT and creates nothing', async () => {
    const pod = h.podConfig();
    const podId = await h.runPod(pod);
    try {
      for (const resources of [{ cpu_shares: '300000' }, { cpu_period: '10' }, { oom_score_adj: '5000' }]) {
        const err = await call(h.d.clients.runtime, 'CreateContainer', {
          pod_sandbox_id: podId,
          config: h.ctrConfig('bad', ['sleep', '1'], { linux: { resources } }),
          sandbox_config: pod,
        }).catch((e: grpc.ServiceError) => e);
        expect({ resources, code: (err as grpc.ServiceError).code }).toEqual({
          resources,
          code: Status.INVALID_ARGUMENT,
        });
      }
      // a command the image does not have: runc refuses it at create
      const err = await call(h.d.clients.runtime, 'CreateContainer', {
        pod_sandbox_id: podId,
        config: h.ctrConfig('nobin', ['/nonexistent']),
        sandbox_config: pod,
      }).catch((e: grpc.ServiceError) => e);
      expect((err as grpc.ServiceError).code).toBe(Status.INVALID_ARGUMENT);
      expect((err as grpc.ServiceError).details).toMatch(/the command "\/nonexistent" cannot be run/);
      const list = await call(h.d.clients.runtime, 'ListContainers', { filter: { pod_sandbox_id: podId } });
      expect(list.containers).toEqual([]);
    } finally {
      await h.removePod(podId);
    }
  }, 120_000);
});
