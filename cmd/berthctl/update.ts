// berthctl update: changes a running container's resources (UpdateContainerResources), with
// crictl's flags. Only the resources given are sent; the runtime keeps the others.
import { call, type CriClients } from '../../api/client';
import type { LinuxContainerResources } from '../../api/generated';
import { UsageError, type Out } from './common';
import { parseFlags } from './flags';
import { resolveContainerId } from './ids';

export const UPDATE_USAGE =
  'update [--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--memory BYTES] ' +
  '[--cpuset-cpus LIST] [--cpuset-mems LIST] CONTAINER-ID [CONTAINER-ID...]';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  ki: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
};

/** A memory size as crictl (docker's units.RAMInBytes) takes it: 1048576, 512k, 64m, 1g, 1.5GiB. */
export function parseMemory(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v.trim());
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new UsageError(`${UPDATE_USAGE}\n--memory wants bytes or a size like 64m or 1g, got ${v}`);
  return Math.floor(Number(m[1]) * unit);
}

function int(v: string | undefined, name: string, signed = false): number | undefined {
  if (v === undefined) return undefined;
  if (!(signed ? /^-?\d+$/ : /^\d+$/).test(v))
    throw new UsageError(
      `${UPDATE_USAGE}\n--${name} wants ${signed ? 'an' : 'a non-negative'} integer, got ${v}`,
    );
  return Number(v);
}

/** The LinuxContainerResources the flags ask for (nothing else set). */
export function resourcesFromFlags(values: Record<string, string | undefined>): LinuxContainerResources {
  const r: LinuxContainerResources = {};
  const shares = int(values['cpu-shares'], 'cpu-shares');
  const quota = int(values['cpu-quota'], 'cpu-quota', true);
  const period = int(values['cpu-period'], 'cpu-period');
  if (shares !== undefined) r.cpu_shares = shares;
  if (quota !== undefined) r.cpu_quota = quota;
  if (period !== undefined) r.cpu_period = period;
  if (values.memory !== undefined) r.memory_limit_in_bytes = parseMemory(values.memory);
  if (values['cpuset-cpus'] !== undefined) r.cpuset_cpus = values['cpuset-cpus'];
  if (values['cpuset-mems'] !== undefined) r.cpuset_mems = values['cpuset-mems'];
  return r;
}

export async function update(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    {
      'cpu-shares': { type: 'string' },
      'cpu-quota': { type: 'string' },
      'cpu-period': { type: 'string' },
      memory: { type: 'string' },
      'cpuset-cpus': { type: 'string' },
      'cpuset-mems': { type: 'string' },
    },
    UPDATE_USAGE,
  );
  if (positionals.length === 0) throw new UsageError(UPDATE_USAGE);
  const linux = resourcesFromFlags(values);
  if (Object.keys(linux).length === 0)
    throw new UsageError(`${UPDATE_USAGE}\nnothing to update: give at least one resource flag`);
  for (const given of positionals) {
    const id = await resolveContainerId(c, given);
    await call(c.runtime, 'UpdateContainerResources', { container_id: id, linux });
    out.write(`${id}\n`);
  }
}
