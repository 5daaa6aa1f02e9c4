// The pure parts of pod user namespaces: reading and checking CRI userns_options, map files,
// and the runtime capability check.
import type { ContainerConfig__Output, PodSandboxConfig__Output } from '../../api/generated';
import { checkContainerIdMap, idMapFile, podIdMap, runtimeHasUserns } from './userns';

type Ns = Record<string, unknown>;
const userns = (hostUid = 100000, extra: Ns = {}): Ns => ({
  userns_options: {
    mode: 'POD',
    uids: [{ container_id: 0, host_id: hostUid, length: 65536 }],
    gids: [{ container_id: 0, host_id: 100000, length: 65536 }],
  },
  ...extra,
});
const pod = (ns: Ns | null): PodSandboxConfig__Output =>
  ({ linux: { security_context: { namespace_options: ns } } }) as unknown as PodSandboxConfig__Output;
const ctr = (ns: Ns | null): ContainerConfig__Output =>
  ({ linux: { security_context: { namespace_options: ns } } }) as unknown as ContainerConfig__Output;

describe('podIdMap', () => {
  it('reads mode POD mappings and ignores NODE or none', () => {
    expect(podIdMap(pod(userns()))).toEqual({
      uids: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gids: [{ containerID: 0, hostID: 100000, size: 65536 }],
    });
    expect(podIdMap(pod(null))).toBeUndefined();
    expect(podIdMap(pod({ userns_options: { mode: 'NODE', uids: [], gids: [] } }))).toBeUndefined();
  });

  it('refuses unknown modes, empty or overlapping mappings, and host namespaces', () => {
    expect(() => podIdMap(pod({ userns_options: { mode: 'TARGET', uids: [], gids: [] } }))).toThrow(
      /TARGET.*is not supported/,
    );
    expect(() => podIdMap(pod({ userns_options: { mode: 'POD', uids: [], gids: [] } }))).toThrow(
      /uids is empty/,
    );
    for (const k of ['ipc', 'pid'])
      expect(() => podIdMap(pod(userns(100000, { [k]: 'NODE' })))).toThrow(
        new RegExp(`cannot use the host's ${k} namespace`),
      );
    // host network is allowed (RuntimeFeatures.user_namespaces_host_network)
    expect(podIdMap(pod(userns(100000, { network: 'NODE' })))?.uids).toHaveLength(1);
  });
});

describe('checkContainerIdMap', () => {
  it('accepts the same mapping and no mapping in a pod without one', () => {
    expect(() => checkContainerIdMap(podIdMap(pod(userns())), ctr(userns()))).not.toThrow();
    expect(() => checkContainerIdMap(undefined, ctr(null))).not.toThrow();
  });
  it('refuses a different mapping, and a mapping in a pod without a user namespace', () => {
    expect(() => checkContainerIdMap(podIdMap(pod(userns())), ctr(userns(300000)))).toThrow(
      /must repeat the pod sandbox mapping/,
    );
    expect(() => checkContainerIdMap(podIdMap(pod(userns())), ctr(null))).toThrow(/must repeat/);
    expect(() => checkContainerIdMap(undefined, ctr(userns()))).toThrow(/has no user namespace/);
  });
});

it('writes map files one range a line', () => {
  expect(
    idMapFile([
      { containerID: 0, hostID: 100000, size: 1 },
      { containerID: 1, hostID: 200001, size: 65535 },
    ]),
  ).toBe('0 100000 1\n1 200001 65535\n');
});

it('takes user-namespace support from the runtime features JSON', () => {
  expect(runtimeHasUserns({ linux: { namespaces: ['mount', 'user', 'network'] } })).toBe(true);
  expect(runtimeHasUserns({ linux: { namespaces: ['mount'] } })).toBe(false);
  expect(runtimeHasUserns(undefined)).toBe(false);
  expect(runtimeHasUserns({})).toBe(false);
});
