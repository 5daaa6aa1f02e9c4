// berthctl's container commands: create, start, stop, rm, ps, inspect, exec, run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { call, type CriClients } from '../../api/client';
import type {
  AuthConfig,
  Container__Output,
  ContainerConfig,
  ContainerFilter,
  PodSandboxConfig,
} from '../../api/generated';
import { UsageError, type Out } from './common';
import { loadContainerConfig, loadPodConfig } from './config';
import {
  checkDocOutput,
  checkListOutput,
  DOC_OUTPUT,
  intFlag,
  LIST_OPTIONS,
  parseExecArgs,
  parseFlags,
  parseLabels,
  regexFlag,
} from './flags';
import { ago, encode, parseInfo, rfc3339Nano, shortId, stateName, table, truncId } from './format';
import { resolveContainerId, resolvePodId } from './ids';
import { keepCount } from './pods';
import { execStream } from './streaming';

const POD_NAME_LABEL = 'io.kubernetes.pod.name';
const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';

const PULL_FLAGS = {
  'no-pull': { type: 'boolean' },
  'with-pull': { type: 'boolean' },
  pull: { type: 'boolean' },
  creds: { type: 'string' },
  auth: { type: 'string' },
} as const;

function authFrom(creds: string | undefined, auth: string | undefined): AuthConfig | undefined {
  if (!creds && !auth) return undefined;
  const a: AuthConfig = {};
  if (creds) {
    const i = creds.indexOf(':');
    a.username = i < 0 ? creds : creds.slice(0, i);
    a.password = i < 0 ? '' : creds.slice(i + 1);
  }
  if (auth) a.auth = auth;
  return a;
}

/** Pulls the container's image unless the runtime already has it. */
async function ensureImage(
  c: CriClients,
  config: ContainerConfig,
  sandbox: PodSandboxConfig,
  auth: AuthConfig | undefined,
): Promise<void> {
  const image = config.image?.image;
  if (!image) throw new Error('the container config has no image.image');
  const st = await call(c.image, 'ImageStatus', { image: { image } });
  if (st.image) return;
  await call(c.image, 'PullImage', { image: { image }, auth, sandbox_config: sandbox });
}

/** crictl fills user_specified_image so the runtime can report what the user asked for. */
function withUserImage(config: ContainerConfig): ContainerConfig {
  if (!config.image?.image || config.image.user_specified_image) return config;
  return { ...config, image: { ...config.image, user_specified_image: config.image.image } };
}

const CREATE_USAGE =
  'create [--pull|--with-pull] [--no-pull] [--creds USER[:PASS]] [--auth BASE64] POD-ID CONTAINER_CONFIG POD_CONFIG';

export async function create(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(argv, PULL_FLAGS, CREATE_USAGE);
  if (positionals.length !== 3) throw new UsageError(CREATE_USAGE);
  const pull = values.pull || values['with-pull'];
  if (pull && values['no-pull']) throw new UsageError(`${CREATE_USAGE}\n--pull and --no-pull conflict`);
  const [podGiven, ctrFile, podFile] = positionals;
  const [config, sandbox] = await Promise.all([loadContainerConfig(ctrFile), loadPodConfig(podFile)]);
  if (pull) await ensureImage(c, config, sandbox, authFrom(values.creds, values.auth));
  const podId = await resolvePodId(c, podGiven);
  const res = await call(c.runtime, 'CreateContainer', {
    pod_sandbox_id: podId,
    config: withUserImage(config),
    sandbox_config: sandbox,
  });
  out.write(`${res.container_id}\n`);
}

const RUN_USAGE =
  'run [-r|--runtime HANDLER] [--no-pull] [--creds USER[:PASS]] [--auth BASE64] CONTAINER_CONFIG POD_CONFIG';

export async function run(c: CriClients, argv: string[], out: Out, err: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    { ...PULL_FLAGS, runtime: { type: 'string', short: 'r' } },
    RUN_USAGE,
  );
  if (positionals.length !== 2) throw new UsageError(RUN_USAGE);
  if ((values.pull || values['with-pull']) && values['no-pull']) {
    throw new UsageError(`${RUN_USAGE}\n--pull and --no-pull conflict`);
  }
  const [config, sandbox] = await Promise.all([
    loadContainerConfig(positionals[0]),
    loadPodConfig(positionals[1]),
  ]);
  if (!values['no-pull']) await ensureImage(c, config, sandbox, authFrom(values.creds, values.auth));
  const pod = await call(c.runtime, 'RunPodSandbox', {
    config: sandbox,
    runtime_handler: values.runtime ?? '',
  });
  const podId = pod.pod_sandbox_id;
  try {
    const ctr = await call(c.runtime, 'CreateContainer', {
      pod_sandbox_id: podId,
      config: withUserImage(config),
      sandbox_config: sandbox,
    });
    await call(c.runtime, 'StartContainer', { container_id: ctr.container_id });
    out.write(`${ctr.container_id}\n`);
  } catch (e) {
    // Unlike crictl, don't leave a half-made pod behind: the user asked for all or nothing.
    try {
      await call(c.runtime, 'StopPodSandbox', { pod_sandbox_id: podId });
      await call(c.runtime, 'RemovePodSandbox', { pod_sandbox_id: podId });
      err.write(`berthctl run: removed pod ${podId} after the failure below\n`);
    } catch (cleanup) {
      err.write(`berthctl run: could not remove pod ${podId}: ${errText(cleanup)}\n`);
    }
    throw e;
  }
}

function errText(e: unknown): string {
  return (e as { details?: string }).details || (e as Error).message;
}

async function eachId(c: CriClients, ids: string[], fn: (id: string) => Promise<void>): Promise<void> {
  for (const given of ids) await fn(await resolveContainerId(c, given));
}

export async function start(c: CriClients, argv: string[], out: Out): Promise<void> {
  const usage = 'start CONTAINER-ID [CONTAINER-ID...]';
  const { positionals } = parseFlags(argv, {}, usage);
  if (positionals.length === 0) throw new UsageError(usage);
  await eachId(c, positionals, async (id) => {
    await call(c.runtime, 'StartContainer', { container_id: id });
    out.write(`${id}\n`);
  });
}

const STOP_USAGE = 'stop [-t|--timeout SECONDS] [-a|--all] CONTAINER-ID [CONTAINER-ID...]';

export async function stop(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    { timeout: { type: 'string', short: 't' }, all: { type: 'boolean', short: 'a' } },
    STOP_USAGE,
  );
  // crictl's default is 0: kill at once unless a grace period is asked for.
  const timeout = intFlag(values.timeout, 'timeout', STOP_USAGE) ?? 0;
  if (values.all && positionals.length) throw new UsageError(`${STOP_USAGE}\n--all takes no CONTAINER-ID`);
  if (!values.all && positionals.length === 0) throw new UsageError(STOP_USAGE);
  let ids = positionals;
  if (values.all) {
    const res = await call(c.runtime, 'ListContainers', {
      filter: { state: { state: 'CONTAINER_RUNNING' } },
    });
    ids = res.containers.map((x) => x.id);
    if (ids.length === 0) {
      out.write('No running containers found.\n');
      return;
    }
  }
  await eachId(c, ids, async (id) => {
    await call(c.runtime, 'StopContainer', { container_id: id, timeout });
    out.write(`${id}\n`);
  });
}

/** The log file and its rotations (`<path>.<suffix>`), which crictl deletes with the container. */
async function removeLogs(logPath: string): Promise<void> {
  const dir = path.dirname(logPath);
  const base = path.basename(logPath);
  const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
  const victims = names.filter((n) => n === base || n.startsWith(base + '.'));
  await Promise.all(victims.map((n) => fs.promises.rm(path.join(dir, n), { force: true })));
}

const RM_USAGE = 'rm [-f|--force] [-k|--keep-logs] [-a|--all] CONTAINER-ID [CONTAINER-ID...]';

export async function rm(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    {
      force: { type: 'boolean', short: 'f' },
      'keep-logs': { type: 'boolean', short: 'k' },
      all: { type: 'boolean', short: 'a' },
    },
    RM_USAGE,
  );
  if (values.all && positionals.length) throw new UsageError(`${RM_USAGE}\n--all takes no CONTAINER-ID`);
  if (!values.all && positionals.length === 0) throw new UsageError(RM_USAGE);
  const ids = values.all
    ? (await call(c.runtime, 'ListContainers', {})).containers.map((x) => x.id)
    : positionals;
  await eachId(c, ids, async (id) => {
    let logPath = '';
    try {
      const st = await call(c.runtime, 'ContainerStatus', { container_id: id });
      logPath = st.status?.log_path ?? '';
      if (st.status?.state === 'CONTAINER_RUNNING') {
        if (!values.force) throw new Error(`container ${id} is running, stop it first or use -f`);
        await call(c.runtime, 'StopContainer', { container_id: id, timeout: 0 });
      }
    } catch (e) {
      // Removing a container that is already gone succeeds (CRI: RemoveContainer is idempotent).
      if ((e as { code?: number }).code !== grpc.status.NOT_FOUND) throw e;
    }
    await call(c.runtime, 'RemoveContainer', { container_id: id });
    if (logPath && !values['keep-logs']) await removeLogs(logPath);
    out.write(`${id}\n`);
  });
}

const PS_USAGE =
  'ps [-a] [-q] [--id ID] [-p|--pod POD-ID] [--name REGEX] [--namespace REGEX] ' +
  '[-s|--state created|running|exited|unknown] [--label K=V]... [-l|--latest] [-n|--last N] ' +
  '[-o table|json|yaml] [--no-trunc]';

const STATES: Record<
  string,
  'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN'
> = {
  created: 'CONTAINER_CREATED',
  running: 'CONTAINER_RUNNING',
  exited: 'CONTAINER_EXITED',
  unknown: 'CONTAINER_UNKNOWN',
};

export async function ps(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    {
      ...LIST_OPTIONS,
      all: { type: 'boolean', short: 'a' },
      pod: { type: 'string', short: 'p' },
    },
    PS_USAGE,
  );
  if (positionals.length) throw new UsageError(PS_USAGE);
  checkListOutput(values.output, PS_USAGE);
  const filter: ContainerFilter = {};
  if (values.id) filter.id = values.id;
  if (values.pod) filter.pod_sandbox_id = await resolvePodId(c, values.pod);
  const last = intFlag(values.last, 'last', PS_USAGE);
  const keep = keepCount(values.latest, last);
  if (values.state !== undefined) {
    const s = STATES[values.state.toLowerCase()];
    if (!s) throw new UsageError('--state must be one of created, running, exited, unknown');
    filter.state = { state: s };
  } else if (!values.all && keep === 0) {
    filter.state = { state: 'CONTAINER_RUNNING' };
  }
  if (keep > 0 && values.state === undefined) delete filter.state; // --latest/--last look at all states
  const labels = parseLabels(values.label);
  if (Object.keys(labels).length) filter.label_selector = labels;
  const nameRe = regexFlag(values.name, 'name');
  const nsRe = regexFlag(values.namespace, 'namespace');

  const res = await call(c.runtime, 'ListContainers', { filter });
  let list: Container__Output[] = res.containers.filter(
    (x) =>
      (!nameRe || nameRe.test(x.metadata?.name ?? '')) &&
      (!nsRe || nsRe.test(x.labels[POD_NAMESPACE_LABEL] ?? '')),
  );
  list.sort((a, b) => {
    const d = BigInt(b.created_at || '0') - BigInt(a.created_at || '0');
    return d > 0n ? 1 : d < 0n ? -1 : 0;
  });
  if (keep > 0) list = list.slice(0, keep);

  if (values.quiet) {
    out.write(list.map((x) => x.id + '\n').join(''));
    return;
  }
  if (values.output === 'json' || values.output === 'yaml') {
    out.write(encode({ containers: list }, values.output));
    return;
  }
  const noTrunc = values['no-trunc'];
  const rows = list.map((x) => {
    const image = x.image?.image ?? '';
    return [
      truncId(x.id, noTrunc),
      !noTrunc && /^sha256:[0-9a-f]{64}$/.test(image) ? shortId(image) : image,
      ago(x.created_at),
      stateName(x.state),
      x.metadata?.name ?? '',
      String(x.metadata?.attempt ?? 0),
      truncId(x.pod_sandbox_id, noTrunc),
      x.labels[POD_NAME_LABEL] ?? 'unknown',
      x.labels[POD_NAMESPACE_LABEL] ?? 'unknown',
    ];
  });
  out.write(
    table(['CONTAINER', 'IMAGE', 'CREATED', 'STATE', 'NAME', 'ATTEMPT', 'POD ID', 'POD', 'NAMESPACE'], rows),
  );
}

export async function inspect(c: CriClients, argv: string[], out: Out): Promise<void> {
  const usage = 'inspect [-o json|yaml] CONTAINER-ID [CONTAINER-ID...]';
  const { values, positionals } = parseFlags(argv, DOC_OUTPUT, usage);
  if (positionals.length === 0) throw new UsageError(usage);
  checkDocOutput(values.output, usage);
  await eachId(c, positionals, async (id) => {
    const res = await call(c.runtime, 'ContainerStatus', { container_id: id, verbose: true });
    if (!res.status) throw new Error(`no status for container ${id}`);
    const s = res.status;
    const status = {
      ...s,
      created_at: rfc3339Nano(s.created_at),
      started_at: rfc3339Nano(s.started_at),
      finished_at: rfc3339Nano(s.finished_at),
    };
    const volumes = imageVolumesOf(s.mounts);
    out.write(
      encode(
        { status, ...(volumes.length ? { imageVolumes: volumes } : {}), info: parseInfo(res.info) },
        values.output,
      ),
    );
  });
}

/** A container's image volumes (mounts with an image), as inspect lists them. */
export function imageVolumesOf(
  mounts: {
    container_path: string;
    image?: { image: string } | null;
    image_sub_path: string;
    readonly: boolean;
  }[],
): { containerPath: string; image: string; subPath: string; readonly: boolean }[] {
  return mounts
    .filter((m) => m.image?.image)
    .map((m) => ({
      containerPath: m.container_path,
      image: m.image!.image,
      subPath: m.image_sub_path,
      readonly: m.readonly,
    }));
}

/**
 * ExecSync, or with -i/-t a streaming session (Exec RPC): the command's output becomes ours and
 * its exit code berthctl's.
 */
export async function exec(c: CriClients, argv: string[], out: Out, err: Out): Promise<number> {
  const a = parseExecArgs(argv);
  if (a.interactive || a.tty) return execStream(c, a);
  const id = await resolveContainerId(c, a.id);
  const res = await call(c.runtime, 'ExecSync', { container_id: id, cmd: a.cmd, timeout: a.timeout });
  if (res.stdout.length) out.write(res.stdout.toString('utf8'));
  if (res.stderr.length) err.write(res.stderr.toString('utf8'));
  return res.exit_code;
}
