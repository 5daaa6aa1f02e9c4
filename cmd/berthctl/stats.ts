// berthctl stats / statsp: container and pod resource usage (ListContainerStats,
// ListPodSandboxStats) as crictl shows it, a table or a JSON/YAML document, once or with --watch.
import { call, type CriClients } from '../../api/client';
import type {
  ContainerStats__Output,
  ContainerStatsFilter,
  PodSandboxStats__Output,
  PodSandboxStatsFilter,
  UInt64Value__Output,
} from '../../api/generated';
import { UsageError, type Out } from './common';
import { checkListOutput, parseFlags, parseLabels } from './flags';
import { encode, humanSize, table, truncId } from './format';
import { resolveContainerId, resolvePodId } from './ids';

function u64(v: UInt64Value__Output | null | undefined): number {
  return v ? Number(v.value) : 0;
}

/** CPU % as crictl: usage_nano_cores / 1e7 (100% = one core). */
export function cpuPercent(nanoCores: UInt64Value__Output | null | undefined): string {
  return (u64(nanoCores) / 1e7).toFixed(2);
}

export function containerRows(stats: ContainerStats__Output[], noTrunc = false): string[][] {
  return stats.map((s) => [
    truncId(s.attributes?.id ?? '', noTrunc),
    s.attributes?.metadata?.name ?? '',
    cpuPercent(s.cpu?.usage_nano_cores),
    humanSize(u64(s.memory?.working_set_bytes)),
    humanSize(u64(s.writable_layer?.used_bytes)),
    String(u64(s.writable_layer?.inodes_used)),
    humanSize(u64(s.swap?.swap_usage_bytes)),
  ]);
}

export function podRows(stats: PodSandboxStats__Output[], noTrunc = false): string[][] {
  return stats.map((s) => {
    const net = s.linux?.network?.default_interface;
    return [
      s.attributes?.metadata?.name ?? '',
      truncId(s.attributes?.id ?? '', noTrunc),
      cpuPercent(s.linux?.cpu?.usage_nano_cores),
      humanSize(u64(s.linux?.memory?.working_set_bytes)),
      humanSize(u64(net?.rx_bytes)),
      humanSize(u64(net?.tx_bytes)),
      String(s.linux?.containers.length ?? 0),
    ];
  });
}

/** Calls `once` now and, with --watch, every `seconds` until SIGINT/SIGTERM. */
async function repeat(watch: boolean, seconds: number, once: () => Promise<void>): Promise<void> {
  await once();
  if (!watch) return;
  let stop = false;
  let wake: () => void = () => undefined;
  const onSignal = (): void => {
    stop = true;
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    while (!stop) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, seconds * 1000);
      });
      if (!stop) await once();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const WATCH_OPTIONS = {
  output: { type: 'string', short: 'o', default: 'table' },
  watch: { type: 'boolean', short: 'w' },
  seconds: { type: 'string', short: 's', default: '1' },
  label: { type: 'string', multiple: true },
  id: { type: 'string' },
  'no-trunc': { type: 'boolean' },
} as const;

function intervalFlag(v: string, usage: string): number {
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0)
    throw new UsageError(`${usage}\n--seconds wants a positive number, got ${v}`);
  return Number(v);
}

const STATS_USAGE =
  'stats [-a|--all] [--id ID] [-p|--pod POD-ID] [--label K=V]... [-o table|json|yaml] ' +
  '[-w|--watch] [-s|--seconds N] [--no-trunc] [CONTAINER-ID]';

export async function stats(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    { ...WATCH_OPTIONS, all: { type: 'boolean', short: 'a' }, pod: { type: 'string', short: 'p' } },
    STATS_USAGE,
  );
  if (positionals.length > 1 || (positionals.length && values.id))
    throw new UsageError(`${STATS_USAGE}\ngive one CONTAINER-ID, as an argument or --id`);
  checkListOutput(values.output, STATS_USAGE);
  const seconds = intervalFlag(values.seconds, STATS_USAGE);
  const filter: ContainerStatsFilter = {};
  const given = positionals[0] ?? values.id;
  if (given) filter.id = await resolveContainerId(c, given);
  if (values.pod) filter.pod_sandbox_id = await resolvePodId(c, values.pod);
  const labels = parseLabels(values.label);
  if (Object.keys(labels).length) filter.label_selector = labels;

  await repeat(values.watch === true, seconds, async () => {
    let list = (await call(c.runtime, 'ListContainerStats', { filter })).stats;
    if (!values.all && !given) {
      // as crictl: running containers only, unless --all or one asked for by id
      const running = await call(c.runtime, 'ListContainers', {
        filter: { state: { state: 'CONTAINER_RUNNING' } },
      });
      const ids = new Set(running.containers.map((x) => x.id));
      list = list.filter((s) => ids.has(s.attributes?.id ?? ''));
    }
    if (values.output === 'table') {
      out.write(
        table(
          ['CONTAINER', 'NAME', 'CPU %', 'MEM', 'DISK', 'INODES', 'SWAP'],
          containerRows(list, values['no-trunc']),
        ),
      );
    } else out.write(encode({ stats: list }, values.output));
  });
}

const STATSP_USAGE =
  'statsp [--id POD-ID] [--label K=V]... [-o table|json|yaml] [-w|--watch] [-s|--seconds N] [--no-trunc] [POD-ID]';

export async function statsp(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(argv, WATCH_OPTIONS, STATSP_USAGE);
  if (positionals.length > 1 || (positionals.length && values.id))
    throw new UsageError(`${STATSP_USAGE}\ngive one POD-ID, as an argument or --id`);
  checkListOutput(values.output, STATSP_USAGE);
  const seconds = intervalFlag(values.seconds, STATSP_USAGE);
  const filter: PodSandboxStatsFilter = {};
  const given = positionals[0] ?? values.id;
  if (given) filter.id = await resolvePodId(c, given);
  const labels = parseLabels(values.label);
  if (Object.keys(labels).length) filter.label_selector = labels;

  await repeat(values.watch === true, seconds, async () => {
    const list = (await call(c.runtime, 'ListPodSandboxStats', { filter })).stats;
    if (values.output === 'table') {
      out.write(
        table(
          ['POD', 'POD ID', 'CPU %', 'MEM', 'NET RX', 'NET TX', 'CONTAINERS'],
          podRows(list, values['no-trunc']),
        ),
      );
    } else out.write(encode({ stats: list }, values.output));
  });
}
