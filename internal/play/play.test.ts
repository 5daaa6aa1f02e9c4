// berthctl play's translation against kubelet's documented behaviour.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { containerEnv, effectiveCommand, expand, expandCommand, type EnvContext } from './env';
import { defaultPullPolicy, podsFromDocuments, PLAY_LABEL } from './manifest';
import { milliValue, intValue } from './quantity';
import {
  containerResources,
  milliCpuToShares,
  oomScoreAdj,
  podCgroupParent,
  podQos,
  sandboxResources,
} from './resources';
import {
  containerConfig,
  containerSecurityContext,
  DEFAULT_MASKED_PATHS,
  parseResolvConf,
  podDns,
  portMappings,
  sandboxConfig,
  type NodeInfo,
} from './translate';
import { imageMount } from './translate';
import { planVolumes } from './volumes';

const GI = 2 ** 30;
const node: NodeInfo = {
  name: 'node1',
  hostIP: '192.0.2.10',
  memoryCapacity: 8 * GI,
  cpuMilli: 2000,
  resolv: { servers: ['192.0.2.53'], searches: ['example.org'], options: ['ndots:2', 'timeout:1'] },
  podsDir: '/var/lib/berth-play/pods',
};

const noConfig = { configMap: () => undefined, secret: () => undefined };

function envCtx(over: Partial<EnvContext> = {}): EnvContext {
  return {
    podIP: '10.0.0.5',
    podIPs: ['10.0.0.5'],
    hostIP: node.hostIP,
    nodeName: node.name,
    nodeCpuMilli: 2000,
    nodeMemory: 8 * GI,
    ...noConfig,
    ...over,
  };
}

function ctr(
  name: string,
  resources?: V1Container['resources'],
  extra: Partial<V1Container> = {},
): V1Container {
  return { name, image: 'busybox:1.36', ...(resources ? { resources } : {}), ...extra };
}

/** one pod through podsFromDocuments (the API server's defaults applied) */
function play(pod: Partial<V1Pod> & { spec: V1Pod['spec'] }): V1Pod {
  return podsFromDocuments([
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', ...pod.metadata }, spec: pod.spec },
  ])[0].pod;
}

describe('quantities', () => {
  test.each([
    ['500m', 500],
    ['1', 1000],
    [1, 1000],
    ['0.1', 100],
    ['1.5', 1500],
    ['1e-3', 1],
    ['1u', 1], // rounds up
  ])('cpu %s is %d millicores', (q, m) => expect(milliValue(q, 'x')).toBe(m));
  test.each([
    ['128Mi', 128 * 2 ** 20],
    ['1G', 1e9],
    ['1.5Gi', 1.5 * GI],
    ['1k', 1000],
    [1024, 1024],
  ])('memory %s is %d bytes', (q, b) => expect(intValue(q, 'x')).toBe(b));
  test('garbage is refused naming the field', () => {
    expect(() => milliValue('1 core', 'limits.cpu')).toThrow(/limits.cpu.*not a quantity/);
  });
});

describe('QoS class (ComputePodQOS, after the API server defaults requests to limits)', () => {
  test('no requests or limits anywhere: BestEffort', () => {
    expect(podQos(play({ spec: { containers: [ctr('a'), ctr('b')] } }))).toBe('BestEffort');
  });
  test('limits only (requests defaulted to them) on cpu and memory of every container: Guaranteed', () => {
    const p = play({ spec: { containers: [ctr('a', { limits: { cpu: '500m', memory: '128Mi' } })] } });
    expect(p.spec!.containers[0].resources!.requests).toEqual({ cpu: '500m', memory: '128Mi' });
    expect(podQos(p)).toBe('Guaranteed');
  });
  test('requests equal to limits, written differently (1 and 1000m): Guaranteed', () => {
    const p = play({
      spec: {
        containers: [
          ctr('a', {
            requests: { cpu: '1000m', memory: '1Gi' },
            limits: { cpu: 1 as unknown as string, memory: '1024Mi' },
          }),
        ],
      },
    });
    expect(podQos(p)).toBe('Guaranteed');
  });
  test('requests below limits: Burstable', () => {
    const p = play({
      spec: {
        containers: [
          ctr('a', { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '128Mi' } }),
        ],
      },
    });
    expect(podQos(p)).toBe('Burstable');
  });
  test('one container without limits next to a guaranteed one: Burstable', () => {
    const p = play({ spec: { containers: [ctr('a', { limits: { cpu: '1', memory: '1Gi' } }), ctr('b')] } });
    expect(podQos(p)).toBe('Burstable');
  });
  test('init containers count: a limited init container makes an otherwise empty pod Burstable', () => {
    const p = play({
      spec: { initContainers: [ctr('i', { limits: { memory: '64Mi' } })], containers: [ctr('a')] },
    });
    expect(podQos(p)).toBe('Burstable');
  });
  test('only cpu and memory count: ephemeral-storage alone is still BestEffort', () => {
    const p = play({ spec: { containers: [ctr('a', { requests: { 'ephemeral-storage': '1Gi' } })] } });
    expect(podQos(p)).toBe('BestEffort');
  });
  test('cgroup parent per QoS class (cgroupfs driver)', () => {
    expect(podCgroupParent('Guaranteed', 'u1')).toBe('/kubepods/podu1');
    expect(podCgroupParent('Burstable', 'u1')).toBe('/kubepods/burstable/podu1');
    expect(podCgroupParent('BestEffort', 'u1')).toBe('/kubepods/besteffort/podu1');
  });
});

describe('Linux resources and oom_score_adj (calculateLinuxResources, GetContainerOOMScoreAdjust)', () => {
  test('cpu shares: 1024 per core, at least 2', () => {
    expect(milliCpuToShares(0)).toBe(2);
    expect(milliCpuToShares(1)).toBe(2);
    expect(milliCpuToShares(250)).toBe(256);
    expect(milliCpuToShares(1000)).toBe(1024);
    expect(milliCpuToShares(1e9)).toBe(262144);
  });
  test('guaranteed container: shares, quota over a 100 ms period, memory limit, -997', () => {
    const p = play({ spec: { containers: [ctr('a', { limits: { cpu: '500m', memory: '128Mi' } })] } });
    expect(containerResources(p, p.spec!.containers[0], node.memoryCapacity)).toEqual({
      cpu_shares: 512,
      cpu_quota: 50000,
      cpu_period: 100000,
      memory_limit_in_bytes: 128 * 2 ** 20,
      oom_score_adj: -997,
    });
  });
  test('best-effort container: 2 shares, no quota, no memory limit, 1000', () => {
    const p = play({ spec: { containers: [ctr('a')] } });
    expect(containerResources(p, p.spec!.containers[0], node.memoryCapacity)).toEqual({
      cpu_shares: 2,
      cpu_quota: 0,
      cpu_period: 100000,
      oom_score_adj: 1000,
    });
  });
  test('a tiny cpu limit gets the 1 ms minimum quota', () => {
    const p = play({ spec: { containers: [ctr('a', { limits: { cpu: '5m' } })] } });
    expect(containerResources(p, p.spec!.containers[0], node.memoryCapacity).cpu_quota).toBe(1000);
  });
  test('burstable: 1000 - 1000*request/capacity, kept within [3, 999]', () => {
    const p = play({
      spec: {
        containers: [
          ctr('quarter', { requests: { memory: '2Gi' } }),
          ctr('none', { requests: { cpu: '100m' } }),
          ctr('all', { requests: { memory: '8Gi' } }),
        ],
      },
    });
    const [quarter, none, all] = p.spec!.containers;
    expect(oomScoreAdj(p, quarter, node.memoryCapacity)).toBe(750);
    expect(oomScoreAdj(p, none, node.memoryCapacity)).toBe(999);
    expect(oomScoreAdj(p, all, node.memoryCapacity)).toBe(3);
  });
  test('system-node-critical pods get -997 whatever their class', () => {
    const p = play({ spec: { priorityClassName: 'system-node-critical', containers: [ctr('a')] } });
    expect(oomScoreAdj(p, p.spec!.containers[0], node.memoryCapacity)).toBe(-997);
  });
  test('a sidecar is as protected as the app container with the smallest request', () => {
    const p = play({
      spec: {
        initContainers: [ctr('side', { requests: { memory: '1Gi' } }, { restartPolicy: 'Always' })],
        containers: [ctr('app', { requests: { memory: '4Gi' } })],
      },
    });
    expect(oomScoreAdj(p, p.spec!.initContainers![0], node.memoryCapacity)).toBe(500);
  });
  test('pod-level resources: app containers summed, or the largest init container', () => {
    const p = play({
      spec: {
        initContainers: [ctr('init', { limits: { cpu: '2', memory: '1Gi' } })],
        containers: [
          ctr('a', { limits: { cpu: '500m', memory: '128Mi' } }),
          ctr('b', { limits: { cpu: '500m', memory: '128Mi' } }),
        ],
      },
    });
    expect(sandboxResources(p)).toEqual({
      cpu_shares: 2048,
      cpu_quota: 200000,
      cpu_period: 100000,
      memory_limit_in_bytes: GI,
    });
  });
});

describe('environment (makeEnvironmentVariables)', () => {
  test('$(VAR) expansion: earlier variables only, $$ escapes, unknown names stay', () => {
    const look = (n: string): string | undefined => ({ A: 'a' })[n];
    expect(expand('x$(A)y', look)).toBe('xay');
    expect(expand('$$(A)', look)).toBe('$(A)');
    expect(expand('$(B)', look)).toBe('$(B)');
    expect(expand('$(A', look)).toBe('$(A');
    expect(expand('cost $5', look)).toBe('cost $5');
    expect(expand('end$', look)).toBe('end$');
  });
  test('envFrom first, env overrides it in place, later env overrides earlier; values expand', () => {
    const p = play({
      metadata: { name: 'p', labels: { app: 'web' } },
      spec: {
        containers: [
          ctr('a', undefined, {
            envFrom: [{ configMapRef: { name: 'cm' } }, { prefix: 'S_', secretRef: { name: 'sec' } }],
            env: [
              { name: 'B', value: 'env-b' },
              { name: 'C', value: '$(A)-$(B)-$(NOPE)' },
              { name: 'A', value: 'late' },
            ],
          }),
        ],
      },
    });
    const ctx = envCtx({
      configMap: (n) => (n === 'cm' ? { A: 'cm-a', B: 'cm-b' } : undefined),
      secret: (n) => (n === 'sec' ? { TOKEN: 't' } : undefined),
    });
    expect(containerEnv(p, p.spec!.containers[0], ctx)).toEqual([
      { key: 'A', value: 'late' },
      { key: 'B', value: 'env-b' },
      { key: 'S_TOKEN', value: 't' },
      { key: 'C', value: 'cm-a-env-b-$(NOPE)' },
    ]);
  });
  test('fieldRef: name, namespace, uid, pod IP, node name, host IP, a label; resourceFieldRef', () => {
    const p = play({
      metadata: { name: 'p', namespace: 'ns1', uid: 'u-1', labels: { app: 'web' } },
      spec: {
        containers: [
          ctr(
            'a',
            { limits: { memory: '64Mi' } },
            {
              env: [
                { name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
                { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'HOST', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
                { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
                {
                  name: 'MEM',
                  valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } },
                },
                { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
              ],
            },
          ),
        ],
      },
    });
    const env = Object.fromEntries(
      containerEnv(p, p.spec!.containers[0], envCtx()).map((e) => [e.key, e.value]),
    );
    expect(env).toEqual({
      N: 'p',
      NS: 'ns1',
      UID: 'u-1',
      IP: '10.0.0.5',
      NODE: 'node1',
      HOST: '192.0.2.10',
      APP: 'web',
      MEM: '64',
      CPU: '2', // no limit: the node's allocatable, in whole cores rounded up
    });
  });
  test('a missing configMap key is an error naming the variable, unless optional', () => {
    const p = play({
      spec: {
        containers: [
          ctr('a', undefined, {
            env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k' } } }],
          }),
        ],
      },
    });
    expect(() => containerEnv(p, p.spec!.containers[0], envCtx())).toThrow(
      /env X: configMap "cm" is not in --config-dir/,
    );
    p.spec!.containers[0].env![0].valueFrom!.configMapKeyRef!.optional = true;
    expect(containerEnv(p, p.spec!.containers[0], envCtx())).toEqual([]);
  });
  test('command and args expand $(VAR) from the environment', () => {
    const c = ctr('a', undefined, { command: ['echo', '$(GREETING)'], args: ['$(WHO)', '$$(WHO)'] });
    expect(
      expandCommand(c, [
        { key: 'GREETING', value: 'hi' },
        { key: 'WHO', value: 'you' },
      ]),
    ).toEqual({
      command: ['echo', 'hi'],
      args: ['you', '$(WHO)'],
    });
  });
});

describe('command/args against the image (Kubernetes rule, applied by the runtime)', () => {
  const image = { Entrypoint: ['/entry'], Cmd: ['--default'] };
  test('neither: Entrypoint + Cmd', () =>
    expect(effectiveCommand([], [], image)).toEqual(['/entry', '--default']));
  test('args only: Entrypoint + args', () =>
    expect(effectiveCommand([], ['-x'], image)).toEqual(['/entry', '-x']));
  test('command only: command, the image Cmd ignored', () =>
    expect(effectiveCommand(['sh'], [], image)).toEqual(['sh']));
  test('both: command + args', () =>
    expect(effectiveCommand(['sh'], ['-c', 'x'], image)).toEqual(['sh', '-c', 'x']));
  test('play passes command and args to CRI as written (the runtime merges with the image)', () => {
    const p = play({ spec: { containers: [ctr('a', undefined, { args: ['-x'] })] } });
    const cfg = containerConfig(p, p.spec!.containers[0], { node, env: envCtx(), volumes: [], attempt: 0 });
    expect(cfg.command).toEqual([]);
    expect(cfg.args).toEqual(['-x']);
  });
});

describe('sandbox config (generatePodSandboxConfig)', () => {
  const p = play({
    metadata: {
      name: 'web',
      namespace: 'shop',
      uid: 'uid-1',
      labels: { app: 'web' },
      annotations: { note: 'n' },
    },
    spec: {
      subdomain: 'svc',
      containers: [
        ctr('nginx', undefined, {
          ports: [
            { name: 'http', containerPort: 80, hostPort: 8080 },
            { name: 'http', containerPort: 81, hostPort: 8081 }, // same name: dropped, as kubelet does
            { containerPort: 9000, protocol: 'UDP' },
          ],
        }),
      ],
      initContainers: [ctr('init', undefined, { ports: [{ containerPort: 7000, hostPort: 7000 }] })],
    },
  });
  const s = sandboxConfig(p, node);
  test('metadata, labels kubelet adds (plus the play marker), annotations as written', () => {
    expect(s.metadata).toEqual({ name: 'web', namespace: 'shop', uid: 'uid-1', attempt: 0 });
    expect(s.labels).toEqual({
      app: 'web',
      'io.kubernetes.pod.name': 'web',
      'io.kubernetes.pod.namespace': 'shop',
      'io.kubernetes.pod.uid': 'uid-1',
      [PLAY_LABEL]: 'true',
    });
    expect(s.annotations).toEqual({ note: 'n' });
  });
  test('log directory /var/log/pods/<ns>_<name>_<uid>; hostname the pod name', () => {
    expect(s.log_directory).toBe('/var/log/pods/shop_web_uid-1');
    expect(s.hostname).toBe('web');
  });
  test('port mappings: app containers only, hostPort 0 kept, duplicate names dropped', () => {
    expect(portMappings(p)).toEqual([
      { protocol: 'TCP', container_port: 80, host_port: 8080, host_ip: '' },
      { protocol: 'UDP', container_port: 9000, host_port: 0, host_ip: '' },
    ]);
  });
  test('hostNetwork: no hostname, NODE network, hostPort defaults to containerPort', () => {
    const h = play({
      spec: { hostNetwork: true, containers: [ctr('a', undefined, { ports: [{ containerPort: 8080 }] })] },
    });
    const hs = sandboxConfig(h, node);
    expect(hs.hostname).toBeUndefined();
    expect(hs.linux!.security_context!.namespace_options!.network).toBe('NODE');
    expect(hs.port_mappings).toEqual([
      { protocol: 'TCP', container_port: 8080, host_port: 8080, host_ip: '' },
    ]);
  });
  test('cgroup parent by QoS; pod-level security context; sysctls', () => {
    const q = play({
      metadata: { name: 'q', uid: 'u9' },
      spec: {
        securityContext: {
          runAsUser: 1000,
          runAsGroup: 2000,
          fsGroup: 3000,
          supplementalGroups: [4000],
          sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
        },
        shareProcessNamespace: true,
        hostIPC: true,
        containers: [ctr('a', { limits: { cpu: '1', memory: '1Gi' } })],
      },
    });
    const qs = sandboxConfig(q, node);
    expect(qs.linux!.cgroup_parent).toBe('/kubepods/podu9');
    expect(qs.linux!.sysctls).toEqual({ 'net.ipv4.ip_unprivileged_port_start': '0' });
    expect(qs.linux!.security_context).toEqual({
      namespace_options: { network: 'POD', pid: 'POD', ipc: 'NODE', userns_options: { mode: 'NODE' } },
      privileged: false,
      supplemental_groups: [3000, 4000],
      seccomp: { profile_type: 'Unconfined' },
      run_as_user: { value: 1000 },
      run_as_group: { value: 2000 },
    });
  });
  test('hostUsers: false asks for a pod user namespace of 65536 ids', () => {
    const u = play({ spec: { hostUsers: false, containers: [ctr('a')] } });
    const ns = sandboxConfig(u, node).linux!.security_context!.namespace_options!.userns_options!;
    expect(ns.mode).toBe('POD');
    expect(ns.uids).toEqual(ns.gids);
    expect(ns.uids![0].container_id).toBe(0);
    expect(ns.uids![0].length).toBe(65536);
    expect(ns.uids![0].host_id! % 65536).toBe(0);
    expect(ns.uids![0].host_id).toBeGreaterThan(0);
  });
});

describe('DNS (GetPodDNS without a cluster DNS)', () => {
  test('ClusterFirst falls back to the node resolv.conf; dnsConfig appended, options merged by name', () => {
    const p = play({
      spec: {
        containers: [ctr('a')],
        dnsConfig: {
          nameservers: ['1.1.1.1', '192.0.2.53'],
          searches: ['x.test'],
          options: [{ name: 'ndots', value: '5' }, { name: 'edns0' }],
        },
      },
    });
    expect(podDns(p, node)).toEqual({
      servers: ['192.0.2.53', '1.1.1.1'],
      searches: ['example.org', 'x.test'],
      options: ['ndots:5', 'timeout:1', 'edns0'],
    });
  });
  test('None: dnsConfig alone', () => {
    const p = play({
      spec: { dnsPolicy: 'None', dnsConfig: { nameservers: ['9.9.9.9'] }, containers: [ctr('a')] },
    });
    expect(podDns(p, node)).toEqual({ servers: ['9.9.9.9'], searches: [], options: [] });
  });
  test('resolv.conf parsing', () => {
    expect(
      parseResolvConf('# c\nnameserver 10.0.0.1\nsearch a b\noptions ndots:1 rotate\nnameserver 10.0.0.2\n'),
    ).toEqual({
      servers: ['10.0.0.1', '10.0.0.2'],
      searches: ['a', 'b'],
      options: ['ndots:1', 'rotate'],
    });
  });
});

describe('container config (generateContainerConfig)', () => {
  const p = play({
    metadata: { name: 'web', namespace: 'shop', uid: 'uid-1' },
    spec: {
      terminationGracePeriodSeconds: 5,
      volumes: [{ name: 'data', emptyDir: {} }],
      containers: [
        ctr('nginx', undefined, {
          workingDir: '/srv',
          tty: true,
          stdin: true,
          ports: [{ containerPort: 80 }],
          volumeMounts: [{ name: 'data', mountPath: '/data', subPath: 'sub', readOnly: true }],
          lifecycle: { preStop: { exec: { command: ['sleep', '1'] } } },
        }),
      ],
    },
  });
  const vols = planVolumes(p, node.podsDir, noConfig);
  const cfg = containerConfig(p, p.spec!.containers[0], {
    node,
    env: envCtx(),
    volumes: vols,
    attempt: 2,
    imageRef: 'sha256:abc',
  });
  test('metadata with the attempt, image id plus what the user wrote, log path <name>/<attempt>.log', () => {
    expect(cfg.metadata).toEqual({ name: 'nginx', attempt: 2 });
    expect(cfg.image).toEqual({ image: 'sha256:abc', user_specified_image: 'busybox:1.36' });
    expect(cfg.log_path).toBe('nginx/2.log');
    expect(cfg.working_dir).toBe('/srv');
    expect([cfg.tty, cfg.stdin, cfg.stdin_once]).toEqual([true, true, false]);
  });
  test('labels and annotations kubelet sets', () => {
    expect(cfg.labels).toEqual({
      'io.kubernetes.pod.name': 'web',
      'io.kubernetes.pod.namespace': 'shop',
      'io.kubernetes.pod.uid': 'uid-1',
      'io.kubernetes.container.name': 'nginx',
    });
    const a = cfg.annotations!;
    expect(a['io.kubernetes.container.restartCount']).toBe('2');
    expect(a['io.kubernetes.container.terminationMessagePath']).toBe('/dev/termination-log');
    expect(a['io.kubernetes.container.terminationMessagePolicy']).toBe('File');
    expect(a['io.kubernetes.pod.terminationGracePeriod']).toBe('5');
    expect(JSON.parse(a['io.kubernetes.container.preStopHandler'])).toEqual({
      exec: { command: ['sleep', '1'] },
    });
    expect(JSON.parse(a['io.kubernetes.container.ports'])).toEqual([{ containerPort: 80, protocol: 'TCP' }]);
    expect(a['io.kubernetes.container.hash']).toMatch(/^[0-9a-f]+$/);
  });
  test('mounts: the volume (subPath, read-only) and the termination log', () => {
    expect(cfg.mounts).toEqual([
      {
        container_path: '/data',
        host_path: '/var/lib/berth-play/pods/uid-1/volumes/kubernetes.io~empty-dir/data/sub',
        readonly: true,
        propagation: 'PROPAGATION_PRIVATE',
      },
      {
        container_path: '/dev/termination-log',
        host_path: '/var/lib/berth-play/pods/uid-1/containers/nginx/termination-log-2',
        readonly: false,
        propagation: 'PROPAGATION_PRIVATE',
      },
    ]);
  });
  test('a mount of a volume the pod does not have is refused naming it', () => {
    const bad = play({
      spec: { containers: [ctr('a', undefined, { volumeMounts: [{ name: 'nope', mountPath: '/x' }] })] },
    });
    expect(() =>
      containerConfig(bad, bad.spec!.containers[0], { node, env: envCtx(), volumes: [], attempt: 0 }),
    ).toThrow(/volumeMount "nope" names no volume/);
  });
});

describe('security context (determineEffectiveSecurityContext)', () => {
  test('container settings override the pod; groups from the pod; no_new_privs only when asked', () => {
    const p = play({
      spec: {
        securityContext: {
          runAsUser: 1000,
          runAsGroup: 1000,
          supplementalGroups: [5],
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          ctr('a', undefined, {
            securityContext: {
              runAsUser: 2000,
              readOnlyRootFilesystem: true,
              allowPrivilegeEscalation: false,
              capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
              seccompProfile: { type: 'Localhost', localhostProfile: 'my.json' },
            },
          }),
          ctr('b'),
        ],
      },
    });
    const a = containerSecurityContext(p, p.spec!.containers[0]);
    expect(a.run_as_user).toEqual({ value: 2000 });
    expect(a.run_as_group).toEqual({ value: 1000 });
    expect(a.supplemental_groups).toEqual([5]);
    expect(a.readonly_rootfs).toBe(true);
    expect(a.no_new_privs).toBe(true);
    expect(a.capabilities).toEqual({ add_capabilities: ['NET_ADMIN'], drop_capabilities: ['ALL'] });
    expect(a.seccomp).toEqual({
      profile_type: 'Localhost',
      localhost_ref: '/var/lib/kubelet/seccomp/my.json',
    });
    expect(a.masked_paths).toEqual(DEFAULT_MASKED_PATHS);
    const b = containerSecurityContext(p, p.spec!.containers[1]);
    expect(b.no_new_privs).toBe(false);
    expect(b.seccomp).toEqual({ profile_type: 'RuntimeDefault' });
  });
  test('privileged: no masked paths, no no_new_privs; procMount Unmasked: empty lists', () => {
    const p = play({
      spec: {
        containers: [
          ctr('priv', undefined, { securityContext: { privileged: true, allowPrivilegeEscalation: false } }),
          ctr('unmasked', undefined, { securityContext: { procMount: 'Unmasked' } }),
        ],
      },
    });
    const priv = containerSecurityContext(p, p.spec!.containers[0]);
    expect(priv.privileged).toBe(true);
    expect(priv.no_new_privs).toBe(false);
    expect(priv.masked_paths).toBeUndefined();
    expect(sandboxConfig(p, node).linux!.security_context!.privileged).toBe(true);
    const un = containerSecurityContext(p, p.spec!.containers[1]);
    expect([un.masked_paths, un.readonly_paths]).toEqual([[], []]);
  });
});

describe('manifests', () => {
  const tpl = { metadata: { labels: { app: 'web' } }, spec: { containers: [ctr('web')] } };
  test('a Pod and the pod templates of the workload kinds, named as their controllers name pods', () => {
    const pods = podsFromDocuments([
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'solo' }, spec: { containers: [ctr('c')] } },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: 'shop' },
        spec: { template: tpl },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'db' },
        spec: { serviceName: 'db', template: tpl },
      },
      { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent' }, spec: { template: tpl } },
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'rs' }, spec: { template: tpl } },
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'once' },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [ctr('c')] } } },
      },
    ]);
    expect(pods.map((p) => p.source)).toEqual([
      'Pod/solo',
      'Deployment/web',
      'StatefulSet/db',
      'DaemonSet/agent',
      'ReplicaSet/rs',
      'Job/once',
    ]);
    const names = pods.map((p) => p.pod.metadata!.name!);
    expect(names[0]).toBe('solo');
    expect(names[1]).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(names[2]).toBe('db-0');
    expect(names[3]).toMatch(/^agent-.{5}$/);
    expect(names[5]).toMatch(/^once-.{5}$/);
    expect(pods[1].pod.metadata!.namespace).toBe('shop');
    expect(pods[1].pod.metadata!.labels!['pod-template-hash']).toBe(names[1].split('-')[1]);
    expect(pods[2].pod.spec!.hostname).toBe('db-0');
    expect(pods[5].pod.metadata!.labels!['job-name']).toBe('once');
    expect(pods[5].job).toBe(true);
    // the same file means the same pods: stable names and uids (--down finds them again)
    const again = podsFromDocuments([
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: 'shop' },
        spec: { template: tpl },
      },
    ]);
    expect(again[0].pod.metadata).toEqual(pods[1].pod.metadata);
  });
  test('other kinds are refused by name', () => {
    expect(() => podsFromDocuments([{ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }])).toThrow(
      /document 1: kind "Service" cannot be played/,
    );
    expect(() => podsFromDocuments(['text'])).toThrow(/document 1 is not a Kubernetes object/);
  });
  test("a Job's template must not restart Always", () => {
    expect(() =>
      podsFromDocuments([
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name: 'j' },
          spec: { template: { spec: { containers: [ctr('c')] } } },
        },
      ]),
    ).toThrow(/restartPolicy Never or OnFailure/);
  });
  test('API defaults: namespace, restart policy, pull policy, termination message path, grace period', () => {
    const p = play({ spec: { containers: [ctr('a'), { name: 'b', image: 'busybox' }] } });
    expect(p.metadata!.namespace).toBe('default');
    expect(p.spec!.restartPolicy).toBe('Always');
    expect(p.spec!.terminationGracePeriodSeconds).toBe(30);
    expect(p.spec!.containers.map((c) => c.imagePullPolicy)).toEqual(['IfNotPresent', 'Always']);
    expect(defaultPullPolicy('reg:5000/busybox:latest')).toBe('Always');
    expect(defaultPullPolicy('reg:5000/busybox')).toBe('Always');
    expect(defaultPullPolicy('busybox@sha256:00')).toBe('IfNotPresent');
  });
  test('bad pods are refused before anything is sent', () => {
    expect(() => play({ spec: { containers: [] } })).toThrow(/spec.containers is empty/);
    expect(() => play({ spec: { containers: [ctr('a'), ctr('a')] } })).toThrow(/two containers are named a/);
    expect(() => play({ metadata: { name: 'Bad_Name' }, spec: { containers: [ctr('a')] } })).toThrow(
      /not a valid DNS name/,
    );
  });
});

describe('volumes', () => {
  const cfg = {
    configMap: (n: string) => (n === 'site' ? { 'index.html': 'hi', other: 'o' } : undefined),
    secret: (n: string) => (n === 'tls' ? { key: 'k' } : undefined),
  };
  test('emptyDir on disk and in memory with a size; hostPath with its type; configMap items; secret on tmpfs', () => {
    const p = play({
      metadata: { name: 'v', uid: 'u', labels: { b: '2', a: '1' } },
      spec: {
        containers: [ctr('a')],
        volumes: [
          { name: 'scratch', emptyDir: {} },
          { name: 'mem', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
          { name: 'host', hostPath: { path: '/srv', type: 'Directory' } },
          {
            name: 'site',
            configMap: { name: 'site', items: [{ key: 'index.html', path: 'www/index.html', mode: 0o600 }] },
          },
          { name: 'tls', secret: { secretName: 'tls' } },
          {
            name: 'info',
            downwardAPI: {
              items: [
                { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
                { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
              ],
            },
          },
        ],
      },
    });
    const v = planVolumes(p, '/pods', cfg);
    expect(v[0]).toEqual({
      name: 'scratch',
      kind: 'emptyDir',
      hostPath: '/pods/u/volumes/kubernetes.io~empty-dir/scratch',
      readOnly: false,
    });
    expect(v[1].tmpfs).toEqual({ sizeBytes: 64 * 2 ** 20 });
    expect(v[2]).toEqual({
      name: 'host',
      kind: 'hostPath',
      hostPath: '/srv',
      readOnly: false,
      hostPathType: 'Directory',
    });
    expect(v[3].files).toEqual([{ path: 'www/index.html', content: 'hi', mode: 0o600 }]);
    expect(v[3].readOnly).toBe(true);
    expect(v[4].tmpfs).toEqual({ sizeBytes: 0 });
    expect(v[4].hostPath).toBe('/pods/u/volumes/kubernetes.io~secret/tls');
    expect(v[5].files).toEqual([
      { path: 'labels', content: 'a="1"\nb="2"\n', mode: 0o644 },
      { path: 'name', content: 'v', mode: 0o644 },
    ]);
  });
  test('what play cannot provide is refused naming the volume', () => {
    const vol = (v: object): V1Pod =>
      play({ spec: { containers: [ctr('a')], volumes: [{ name: 'x', ...v }] } });
    expect(() => planVolumes(vol({ configMap: { name: 'missing' } }), '/pods', cfg)).toThrow(
      /volume "x": configMap "missing" is not in --config-dir/,
    );
    expect(
      planVolumes(vol({ configMap: { name: 'missing', optional: true } }), '/pods', cfg)[0].files,
    ).toEqual([]);
    expect(() => planVolumes(vol({ persistentVolumeClaim: { claimName: 'c' } }), '/pods', cfg)).toThrow(
      /volume "x": persistentVolumeClaim volumes/,
    );
    expect(() => planVolumes(vol({ hostPath: { path: '/x', type: 'Weird' } }), '/pods', cfg)).toThrow(
      /hostPath type "Weird"/,
    );
    expect(() =>
      planVolumes(
        vol({ configMap: { name: 'site', items: [{ key: 'other', path: '../x' }] } }),
        '/pods',
        cfg,
      ),
    ).toThrow(/relative/);
  });
});

describe('image volumes (KEP-4639, kubelet gate ImageVolume)', () => {
  const withImage = (image: object, mounts: object[] = []): V1Pod =>
    play({
      metadata: { name: 'iv', uid: 'u' },
      spec: {
        containers: [{ ...ctr('a'), volumeMounts: mounts as V1Container['volumeMounts'] }],
        volumes: [{ name: 'data', image: image as { reference?: string } }],
      },
    });
  test('pullPolicy defaults as the API server does: Always for :latest or no tag, else IfNotPresent', () => {
    const policy = (reference: string, pullPolicy?: string): string =>
      planVolumes(withImage({ reference, pullPolicy }), '/pods', noConfig)[0].image!.pullPolicy;
    expect(policy('reg.example:5000/lab/data')).toBe('Always');
    expect(policy('reg.example:5000/lab/data:latest')).toBe('Always');
    expect(policy('reg.example:5000/lab/data:v1')).toBe('IfNotPresent');
    expect(policy('lab/data@sha256:' + 'a'.repeat(64))).toBe('IfNotPresent');
    expect(policy('lab/data:v1', 'Always')).toBe('Always');
    expect(policy('lab/data', 'Never')).toBe('Never');
    expect(policy('lab/data', '')).toBe('Always');
  });
  test('planned read-only with nothing on disk', () => {
    expect(planVolumes(withImage({ reference: 'lab/data:v1' }), '/pods', noConfig)).toEqual([
      {
        name: 'data',
        kind: 'image',
        hostPath: '',
        readOnly: true,
        image: { reference: 'lab/data:v1', pullPolicy: 'IfNotPresent' },
      },
    ]);
  });
  test('a missing reference or an unknown pullPolicy is refused naming the volume', () => {
    expect(() => planVolumes(withImage({}), '/pods', noConfig)).toThrow(
      /^volume "data": image\.reference is missing$/,
    );
    expect(() => planVolumes(withImage({ reference: '' }), '/pods', noConfig)).toThrow(
      /volume "data": image\.reference is missing/,
    );
    expect(() =>
      planVolumes(withImage({ reference: 'lab/data', pullPolicy: 'Sometimes' }), '/pods', noConfig),
    ).toThrow(/volume "data": image\.pullPolicy "Sometimes" is not Always, IfNotPresent, Never/);
  });
  test('each volumeMount: the image (its id once pulled), subPath as image_sub_path, read-only whatever readOnly says', () => {
    const p = withImage({ reference: 'lab/data:v1' }, [
      { name: 'data', mountPath: '/data' },
      { name: 'data', mountPath: '/sub', subPath: 'data/sub', readOnly: false },
      { name: 'data', mountPath: '/prop', mountPropagation: 'HostToContainer' },
    ]);
    const vols = planVolumes(p, node.podsDir, noConfig);
    const cfg = (volumes: typeof vols) =>
      containerConfig(p, p.spec!.containers[0], { node, env: envCtx(), volumes, attempt: 0 }).mounts!;
    const before = cfg(vols);
    expect(before.slice(0, 3)).toEqual([
      {
        container_path: '/data',
        host_path: '',
        image: { image: 'lab/data:v1', user_specified_image: 'lab/data:v1' },
        image_sub_path: '',
        readonly: true,
        propagation: 'PROPAGATION_PRIVATE',
      },
      {
        container_path: '/sub',
        host_path: '',
        image: { image: 'lab/data:v1', user_specified_image: 'lab/data:v1' },
        image_sub_path: 'data/sub',
        readonly: true,
        propagation: 'PROPAGATION_PRIVATE',
      },
      imageMount('/prop', { reference: 'lab/data:v1', pullPolicy: 'IfNotPresent' }, ''),
    ]);
    // the termination log still follows
    expect(before[3].container_path).toBe('/dev/termination-log');
    const pulled = vols.map((v) => ({ ...v, image: { ...v.image!, imageRef: 'sha256:' + 'b'.repeat(64) } }));
    expect(cfg(pulled)[1].image).toEqual({
      image: 'sha256:' + 'b'.repeat(64),
      user_specified_image: 'lab/data:v1',
    });
  });
  test('a subPath that climbs out or is absolute is refused, as for any volume', () => {
    for (const subPath of ['../etc', '/etc', 'a/../../b']) {
      const p = withImage({ reference: 'lab/data:v1' }, [{ name: 'data', mountPath: '/d', subPath }]);
      const vols = planVolumes(p, node.podsDir, noConfig);
      expect(() =>
        containerConfig(p, p.spec!.containers[0], { node, env: envCtx(), volumes: vols, attempt: 0 }),
      ).toThrow(/volumeMount data: subPath must be relative without '\.\.'/);
    }
  });
});
