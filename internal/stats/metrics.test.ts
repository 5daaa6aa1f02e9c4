import { BASE_LABEL_KEYS, containerMetrics, metricDescriptors, networkMetrics } from './metrics';

const labels = {
  container: 'app',
  id: '/berth/berth-c1',
  image: 'busybox',
  name: 'c1',
  namespace: 'ns',
  pod: 'p',
};

test('descriptors: unique cAdvisor names, base label keys first', () => {
  const d = metricDescriptors();
  const names = d.map((x) => x.name);
  expect(new Set(names).size).toBe(names.length);
  for (const n of [
    'container_cpu_usage_seconds_total',
    'container_memory_working_set_bytes',
    'container_memory_rss',
    'container_memory_usage_bytes',
    'container_network_receive_bytes_total',
    'container_network_transmit_bytes_total',
    'container_fs_usage_bytes',
  ])
    expect(names).toContain(n);
  for (const x of d) expect(x.label_keys!.slice(0, BASE_LABEL_KEYS.length)).toEqual([...BASE_LABEL_KEYS]);
  expect(d.find((x) => x.name === 'container_network_receive_bytes_total')!.label_keys).toContain(
    'interface',
  );
});

test('every metric has as many label values as its descriptor has keys', () => {
  const byName = new Map(metricDescriptors().map((x) => [x.name!, x]));
  const ms = [
    ...containerMetrics({
      labels,
      sample: {
        cpu: { usageNs: 3_500_000_000n, userNs: 2_000_000_000n, systemNs: 1_000_000_000n },
        memory: {
          usage: 100n,
          workingSet: 80n,
          rss: 50n,
          cache: 20n,
          mappedFile: 1n,
          pageFaults: 9n,
          majorPageFaults: 2n,
          swap: 0n,
        },
        pids: 4n,
      },
      fs: { bytes: 4096, inodes: 3 },
      timestamp: '1700000000123456789',
    }),
    ...networkMetrics(
      { ...labels, container: 'POD' },
      [
        {
          name: 'eth0',
          rxBytes: 1n,
          rxPackets: 2n,
          rxErrors: 0n,
          rxDropped: 0n,
          txBytes: 3n,
          txPackets: 4n,
          txErrors: 0n,
          txDropped: 0n,
        },
      ],
      '1700000000123456789',
    ),
  ];
  for (const m of ms) {
    const d = byName.get(m.name!);
    expect(d).toBeDefined();
    expect(m.label_values!.length).toBe(d!.label_keys!.length);
  }
  const get = (n: string): string | undefined => ms.find((m) => m.name === n)?.value?.value?.toString();
  expect(get('container_cpu_usage_seconds_total')).toBe('3');
  expect(ms.find((m) => m.name === 'container_cpu_usage_seconds_total')!.metric_type).toBe('COUNTER');
  expect(get('container_memory_working_set_bytes')).toBe('80');
  expect(ms.find((m) => m.name === 'container_memory_working_set_bytes')!.metric_type).toBe('GAUGE');
  expect(get('container_spec_memory_limit_bytes')).toBe('0');
  expect(get('container_processes')).toBe('4');
  expect(get('container_fs_usage_bytes')).toBe('4096');
  expect(get('container_last_seen')).toBe('1700000000');
  const rx = ms.find((m) => m.name === 'container_network_receive_bytes_total')!;
  expect(rx.label_values).toEqual(['POD', '/berth/berth-c1', 'busybox', 'c1', 'ns', 'p', 'eth0']);
});
