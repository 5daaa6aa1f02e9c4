// The daemon's lean service definitions (api/proto-root.ts) must behave exactly as proto-loader's
// (api/proto.ts), which the clients and the generated types are built on.
import type * as grpc from '@grpc/grpc-js';
import { loadCri } from '../../api/proto';
import { criService, originalName } from '../../api/proto-root';

type Def = grpc.MethodDefinition<unknown, unknown>;

const services = ['RuntimeService', 'ImageService'] as const;

const samples: Record<string, unknown> = {
  CreateContainerRequest: {
    pod_sandbox_id: 'p1',
    config: {
      metadata: { name: 'app', attempt: 2 },
      image: { image: 'busybox' },
      command: ['sh', '-c', 'exit 0'],
      envs: [{ key: 'A', value: Buffer.from('b') }],
      labels: { x: 'y' },
      linux: { resources: { memory_limit_in_bytes: '9007199254740993', cpu_shares: '2' } },
      mounts: [{ container_path: '/d', propagation: 'PROPAGATION_BIDIRECTIONAL' }],
    },
  },
  ExecSyncResponse: { stdout: Buffer.from('out'), stderr: Buffer.alloc(0), exit_code: 3 },
  ListContainersRequest: { filter: { state: { state: 'CONTAINER_RUNNING' }, label_selector: { a: 'b' } } },
};

describe('api/proto-root criService', () => {
  for (const svc of services) {
    it(`${svc}: every method's path, streaming and name as proto-loader's`, () => {
      const ref = loadCri().runtime.v1[svc].service as unknown as Record<string, Def>;
      const lean = criService(svc);
      expect(Object.keys(lean).sort()).toEqual(Object.keys(ref).sort());
      for (const [name, r] of Object.entries(ref)) {
        const l = lean[name];
        expect([l.path, l.requestStream, l.responseStream, l.originalName]).toEqual([
          r.path,
          r.requestStream,
          r.responseStream,
          r.originalName,
        ]);
      }
    });

    it(`${svc}: the same bytes and the same decoded objects as proto-loader's`, () => {
      const ref = loadCri().runtime.v1[svc].service as unknown as Record<string, Def>;
      const lean = criService(svc);
      for (const [name, r] of Object.entries(ref)) {
        const l = lean[name];
        const reqSample = samples[l.requestTypeName] ?? {};
        const a = r.requestSerialize(reqSample);
        expect(l.requestSerialize(reqSample)).toEqual(a);
        expect(l.requestDeserialize(a)).toEqual(r.requestDeserialize(a));
        const resType = `${name}Response`;
        const resSample = samples[resType] ?? {};
        const b = r.responseSerialize(resSample);
        expect(l.responseSerialize(resSample)).toEqual(b);
        expect(l.responseDeserialize(b)).toEqual(r.responseDeserialize(b));
      }
    });
  }

  it('a populated request decodes to what the handlers expect (int64 as strings, enums by name)', () => {
    const m = criService('RuntimeService').CreateContainer;
    const got = m.requestDeserialize(m.requestSerialize(samples.CreateContainerRequest)) as {
      config: { linux: { resources: { memory_limit_in_bytes: string } }; mounts: { propagation: string }[] };
    };
    expect(got.config.linux.resources.memory_limit_in_bytes).toBe('9007199254740993');
    expect(got.config.mounts[0].propagation).toBe('PROPAGATION_BIDIRECTIONAL');
    expect(() => m.requestSerialize([])).toThrow(/array/);
  });

  it('originalName lower-cases the first letter', () => {
    expect(originalName('RunPodSandbox')).toBe('runPodSandbox');
  });
});
