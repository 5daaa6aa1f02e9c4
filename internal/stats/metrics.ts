// The cAdvisor-named metrics kubelet serves on /metrics/cadvisor when it takes pod and container
// stats from the CRI (PodAndContainerStatsFromCRI). kubelet builds Prometheus descriptors from
// ListMetricDescriptors and pairs each Metric's label_values with its descriptor's label_keys by
// position, so every metric of a name carries the same keys in the same order.
//
// Labels follow cAdvisor: container (the CRI container name; "POD" for pod-level series, as the
// infra container), id (the cgroup path), image, name (the runtime's container id), namespace,
// pod. CRI values are integers: *_seconds_total are whole seconds (CRI-O does the same).
import type { Metric, MetricDescriptor } from '../../api/generated';
import type { CgroupSample } from './cgroup';
import type { NetDevEntry } from './parse';
import { deviceName } from './io';

export const BASE_LABEL_KEYS = ['container', 'id', 'image', 'name', 'namespace', 'pod'] as const;

type Kind = 'COUNTER' | 'GAUGE';

interface Def {
  name: string;
  help: string;
  kind: Kind;
  /** label keys after the base ones */
  extra?: string[];
}

const CONTAINER_DEFS: Def[] = [
  {
    name: 'container_cpu_usage_seconds_total',
    help: 'Cumulative cpu time consumed in seconds.',
    kind: 'COUNTER',
    extra: ['cpu'],
  },
  {
    name: 'container_cpu_user_seconds_total',
    help: 'Cumulative user cpu time consumed in seconds.',
    kind: 'COUNTER',
  },
  {
    name: 'container_cpu_system_seconds_total',
    help: 'Cumulative system cpu time consumed in seconds.',
    kind: 'COUNTER',
  },
  {
    name: 'container_memory_usage_bytes',
    help: 'Current memory usage in bytes, including all memory regardless of when it was accessed',
    kind: 'GAUGE',
  },
  { name: 'container_memory_working_set_bytes', help: 'Current working set in bytes.', kind: 'GAUGE' },
  { name: 'container_memory_rss', help: 'Size of RSS in bytes.', kind: 'GAUGE' },
  { name: 'container_memory_cache', help: 'Number of bytes of page cache memory.', kind: 'GAUGE' },
  { name: 'container_memory_mapped_file', help: 'Size of memory mapped files in bytes.', kind: 'GAUGE' },
  { name: 'container_memory_swap', help: 'Container swap usage in bytes.', kind: 'GAUGE' },
  {
    name: 'container_memory_failures_total',
    help: 'Cumulative count of memory allocation failures.',
    kind: 'COUNTER',
    extra: ['failure_type', 'scope'],
  },
  { name: 'container_spec_memory_limit_bytes', help: 'Memory limit for the container.', kind: 'GAUGE' },
  { name: 'container_processes', help: 'Number of processes running inside the container.', kind: 'GAUGE' },
  {
    name: 'container_fs_usage_bytes',
    help: 'Number of bytes that are consumed by the container on this filesystem.',
    kind: 'GAUGE',
  },
  {
    name: 'container_fs_inodes_used',
    help: 'Number of inodes used by the container on this filesystem.',
    kind: 'GAUGE',
  },
  { name: 'container_last_seen', help: 'Last time a container was seen by the exporter', kind: 'GAUGE' },
];

const NETWORK_DEFS: Def[] = [
  ['receive_bytes', 'bytes received'],
  ['receive_packets', 'packets received'],
  ['receive_errors', 'errors encountered while receiving'],
  ['receive_packets_dropped', 'packets dropped while receiving'],
  ['transmit_bytes', 'bytes transmitted'],
  ['transmit_packets', 'packets transmitted'],
  ['transmit_errors', 'errors encountered while transmitting'],
  ['transmit_packets_dropped', 'packets dropped while transmitting'],
].map(([n, h]) => ({
  name: `container_network_${n}_total`,
  help: `Cumulative count of ${h}`,
  kind: 'COUNTER' as Kind,
  extra: ['interface'],
}));

// Block I/O (from the cgroup's io.stat / blkio accounting) and PSI, under cAdvisor's names.
const IO_DEFS: Def[] = [
  ...[
    ['reads_bytes', 'bytes read'],
    ['writes_bytes', 'bytes written'],
    ['reads', 'reads completed'],
    ['writes', 'writes completed'],
  ].map(([n, h]) => ({
    name: `container_fs_${n}_total`,
    help: `Cumulative count of ${h}`,
    kind: 'COUNTER' as Kind,
    extra: ['device'],
  })),
  {
    name: 'container_blkio_device_usage_total',
    help: 'Blkio Device bytes usage',
    kind: 'COUNTER',
    extra: ['device', 'major', 'minor', 'operation'],
  },
  ...['cpu', 'memory', 'io'].flatMap((r) => [
    {
      name: `container_pressure_${r}_stalled_seconds_total`,
      help: `Total time duration no tasks in the container could make progress due to ${r} congestion.`,
      kind: 'COUNTER' as Kind,
    },
    {
      name: `container_pressure_${r}_waiting_seconds_total`,
      help: `Total time duration tasks in the container have waited due to ${r} congestion.`,
      kind: 'COUNTER' as Kind,
    },
  ]),
];

const ALL_DEFS = [...CONTAINER_DEFS, ...IO_DEFS, ...NETWORK_DEFS];
const DEF_BY_NAME = new Map(ALL_DEFS.map((d) => [d.name, d]));

export function metricDescriptors(): MetricDescriptor[] {
  return ALL_DEFS.map((d) => ({
    name: d.name,
    help: d.help,
    label_keys: [...BASE_LABEL_KEYS, ...(d.extra ?? [])],
  }));
}

/** The values of BASE_LABEL_KEYS, in that order. */
export interface BaseLabels {
  container: string;
  id: string;
  image: string;
  name: string;
  namespace: string;
  pod: string;
}

function baseValues(l: BaseLabels): string[] {
  return BASE_LABEL_KEYS.map((k) => l[k]);
}

class MetricList {
  readonly out: Metric[] = [];
  private readonly base: string[];

  constructor(
    labels: BaseLabels,
    private readonly timestamp: string,
  ) {
    this.base = baseValues(labels);
  }

  add(name: string, value: bigint | undefined, extra: string[] = []): void {
    if (value === undefined) return;
    const d = DEF_BY_NAME.get(name);
    if (!d || (d.extra?.length ?? 0) !== extra.length) throw new Error(`metric ${name}: label mismatch`);
    this.out.push({
      name,
      timestamp: this.timestamp,
      metric_type: d.kind,
      label_values: [...this.base, ...extra],
      value: { value: (value < 0n ? 0n : value).toString() },
    });
  }
}

const NS = 1_000_000_000n;

export interface ContainerMetricInput {
  labels: BaseLabels;
  sample: CgroupSample;
  fs?: { bytes: number; inodes: number };
  /** ns since the epoch */
  timestamp: string;
}

export function containerMetrics(c: ContainerMetricInput): Metric[] {
  const m = new MetricList(c.labels, c.timestamp);
  const { cpu, memory, pids } = c.sample;
  if (cpu) {
    m.add('container_cpu_usage_seconds_total', cpu.usageNs / NS, ['total']);
    m.add('container_cpu_user_seconds_total', cpu.userNs === undefined ? undefined : cpu.userNs / NS);
    m.add('container_cpu_system_seconds_total', cpu.systemNs === undefined ? undefined : cpu.systemNs / NS);
  }
  if (memory) {
    m.add('container_memory_usage_bytes', memory.usage);
    m.add('container_memory_working_set_bytes', memory.workingSet);
    m.add('container_memory_rss', memory.rss);
    m.add('container_memory_cache', memory.cache);
    m.add('container_memory_mapped_file', memory.mappedFile);
    m.add('container_memory_swap', memory.swap);
    m.add('container_memory_failures_total', memory.pageFaults, ['pgfault', 'container']);
    m.add('container_memory_failures_total', memory.majorPageFaults, ['pgmajfault', 'container']);
    // cAdvisor reports 0 for "no limit"
    m.add('container_spec_memory_limit_bytes', memory.limit ?? 0n);
  }
  m.add('container_processes', pids);
  if (c.fs) {
    m.add('container_fs_usage_bytes', BigInt(c.fs.bytes));
    m.add('container_fs_inodes_used', BigInt(c.fs.inodes));
  }
  for (const d of c.sample.io ?? []) {
    const dev = [deviceName(d.major, d.minor)];
    m.add('container_fs_reads_bytes_total', d.readBytes, dev);
    m.add('container_fs_writes_bytes_total', d.writeBytes, dev);
    m.add('container_fs_reads_total', d.reads, dev);
    m.add('container_fs_writes_total', d.writes, dev);
    const mm = [...dev, String(d.major), String(d.minor)];
    m.add('container_blkio_device_usage_total', d.readBytes, [...mm, 'Read']);
    m.add('container_blkio_device_usage_total', d.writeBytes, [...mm, 'Write']);
  }
  for (const r of ['cpu', 'memory', 'io'] as const) {
    const p = c.sample.psi?.[r];
    const secs = (us: bigint | undefined) => (us === undefined ? undefined : us / 1_000_000n);
    m.add(`container_pressure_${r}_stalled_seconds_total`, secs(p?.full?.total));
    m.add(`container_pressure_${r}_waiting_seconds_total`, secs(p?.some?.total));
  }
  m.add('container_last_seen', BigInt(c.timestamp) / NS);
  return m.out;
}

export function networkMetrics(labels: BaseLabels, ifaces: NetDevEntry[], timestamp: string): Metric[] {
  const m = new MetricList(labels, timestamp);
  for (const i of ifaces) {
    const x = [i.name];
    m.add('container_network_receive_bytes_total', i.rxBytes, x);
    m.add('container_network_receive_packets_total', i.rxPackets, x);
    m.add('container_network_receive_errors_total', i.rxErrors, x);
    m.add('container_network_receive_packets_dropped_total', i.rxDropped, x);
    m.add('container_network_transmit_bytes_total', i.txBytes, x);
    m.add('container_network_transmit_packets_total', i.txPackets, x);
    m.add('container_network_transmit_errors_total', i.txErrors, x);
    m.add('container_network_transmit_packets_dropped_total', i.txDropped, x);
  }
  return m.out;
}
