// berthctl's pod commands: runp, pods, inspectp, stopp, rmp.
import * as grpc from '@grpc/grpc-js';
import { call, type CriClients } from '../../api/client';
import type { PodSandbox__Output, PodSandboxFilter } from '../../api/generated';
import { UsageError, type Out } from './common';
import { loadPodConfig } from './config';
import {
  checkDocOutput,
  checkListOutput,
  DOC_OUTPUT,
  intFlag,
  LIST_OPTIONS,
  parseFlags,
  parseLabels,
  regexFlag,
} from './flags';
import { ago, encode, parseInfo, rfc3339Nano, stateName, table, truncId } from './format';
import { resolvePodId } from './ids';

const RUNP_USAGE = 'runp [-r|--runtime HANDLER] POD_CONFIG.(json|yaml)';

export async function runp(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(argv, { runtime: { type: 'string', short: 'r' } }, RUNP_USAGE);
  if (positionals.length !== 1) throw new UsageError(RUNP_USAGE);
  const config = await loadPodConfig(positionals[0]);
  const res = await call(c.runtime, 'RunPodSandbox', { config, runtime_handler: values.runtime ?? '' });
  out.write(`${res.pod_sandbox_id}\n`);
}

const PODS_USAGE =
  'pods [-q] [--id ID] [--name REGEX] [--namespace REGEX] [-s|--state ready|notready] [--label K=V]... ' +
  '[-l|--latest] [-n|--last N] [-o table|json|yaml] [--no-trunc]';

/** Newest first, as crictl lists. */
function byCreatedDesc(a: { created_at: string }, b: { created_at: string }): number {
  const d = BigInt(b.created_at || '0') - BigInt(a.created_at || '0');
  return d > 0n ? 1 : d < 0n ? -1 : 0;
}

/** How many of a newest-first list --latest/--last keep (0 = all). */
export function keepCount(latest: boolean | undefined, last: number | undefined): number {
  if (latest) return 1;
  return last ?? 0;
}

export async function pods(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(argv, LIST_OPTIONS, PODS_USAGE);
  if (positionals.length) throw new UsageError(PODS_USAGE);
  checkListOutput(values.output, PODS_USAGE);
  const filter: PodSandboxFilter = {};
  if (values.id) filter.id = values.id;
  if (values.state !== undefined) {
    const s = values.state.toLowerCase();
    if (s !== 'ready' && s !== 'notready') throw new UsageError('--state must be ready or notready');
    filter.state = { state: s === 'ready' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY' };
  }
  const labels = parseLabels(values.label);
  if (Object.keys(labels).length) filter.label_selector = labels;
  const nameRe = regexFlag(values.name, 'name');
  const nsRe = regexFlag(values.namespace, 'namespace');
  const last = intFlag(values.last, 'last', PODS_USAGE);

  const res = await call(c.runtime, 'ListPodSandbox', { filter });
  let list: PodSandbox__Output[] = res.items.filter(
    (p) =>
      (!nameRe || nameRe.test(p.metadata?.name ?? '')) && (!nsRe || nsRe.test(p.metadata?.namespace ?? '')),
  );
  list.sort(byCreatedDesc);
  const keep = keepCount(values.latest, last);
  if (keep > 0) list = list.slice(0, keep);

  if (values.quiet) {
    out.write(list.map((p) => p.id + '\n').join(''));
    return;
  }
  if (values.output === 'json' || values.output === 'yaml') {
    out.write(encode({ items: list }, values.output));
    return;
  }
  const noTrunc = values['no-trunc'];
  const rows = list.map((p) => [
    truncId(p.id, noTrunc),
    ago(p.created_at),
    stateName(p.state),
    p.metadata?.name ?? '',
    p.metadata?.namespace ?? '',
    String(p.metadata?.attempt ?? 0),
    p.runtime_handler || '(default)',
  ]);
  out.write(table(['POD ID', 'CREATED', 'STATE', 'NAME', 'NAMESPACE', 'ATTEMPT', 'RUNTIME'], rows));
}

export async function inspectp(c: CriClients, argv: string[], out: Out): Promise<void> {
  const usage = 'inspectp [-o json|yaml] POD-ID [POD-ID...]';
  const { values, positionals } = parseFlags(argv, DOC_OUTPUT, usage);
  if (positionals.length === 0) throw new UsageError(usage);
  checkDocOutput(values.output, usage);
  for (const given of positionals) {
    const id = await resolvePodId(c, given);
    const res = await call(c.runtime, 'PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
    if (!res.status) throw new Error(`no status for pod ${given}`);
    const status = { ...res.status, created_at: rfc3339Nano(res.status.created_at) };
    out.write(encode({ status, info: parseInfo(res.info) }, values.output));
  }
}

export async function stopp(c: CriClients, argv: string[], out: Out): Promise<void> {
  const usage = 'stopp POD-ID [POD-ID...]';
  const { positionals } = parseFlags(argv, {}, usage);
  if (positionals.length === 0) throw new UsageError(usage);
  for (const given of positionals) {
    const id = await resolvePodId(c, given);
    await call(c.runtime, 'StopPodSandbox', { pod_sandbox_id: id });
    out.write(`Stopped sandbox ${id}\n`);
  }
}

const RMP_USAGE = 'rmp [-f|--force] [-a|--all] POD-ID [POD-ID...]';

export async function rmp(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    { force: { type: 'boolean', short: 'f' }, all: { type: 'boolean', short: 'a' } },
    RMP_USAGE,
  );
  if (values.all && positionals.length) throw new UsageError(`${RMP_USAGE}\n--all takes no POD-ID`);
  if (!values.all && positionals.length === 0) throw new UsageError(RMP_USAGE);
  const ids = values.all
    ? (await call(c.runtime, 'ListPodSandbox', {})).items.map((p) => p.id)
    : await Promise.all(positionals.map((p) => resolvePodId(c, p)));
  for (const id of ids) {
    let ready = false;
    try {
      const st = await call(c.runtime, 'PodSandboxStatus', { pod_sandbox_id: id });
      ready = st.status?.state === 'SANDBOX_READY';
    } catch (e) {
      // Removing a pod that is already gone succeeds (CRI: RemovePodSandbox is idempotent).
      if ((e as { code?: number }).code !== grpc.status.NOT_FOUND) throw e;
    }
    if (ready) {
      if (!values.force) throw new Error(`pod sandbox ${id} is running, stop it first or use -f`);
      await call(c.runtime, 'StopPodSandbox', { pod_sandbox_id: id });
    }
    await call(c.runtime, 'RemovePodSandbox', { pod_sandbox_id: id });
    out.write(`Removed sandbox ${id}\n`);
  }
}
