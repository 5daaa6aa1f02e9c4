// A container's environment and its command/args as kubelet makes them
// (pkg/kubelet/kubelet_pods.go makeEnvironmentVariables, third_party/forked/golang/expansion):
// envFrom first, then env in order, a later name overriding an earlier one in place; `$(NAME)` in
// a value is replaced by a variable defined before it, `$$` is a literal `$`, and an unknown
// `$(NAME)` is left as written. command and args are expanded with the final environment.
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';
import type { KeyValue } from '../../api/generated';
import { intValue, milliValue } from './quantity';

/** What the pod's environment may refer to that is not in the pod itself. */
export interface EnvContext {
  podIP: string;
  podIPs: string[];
  hostIP: string;
  nodeName: string;
  /** node allocatable, the value of limits.cpu/limits.memory for a container without a limit */
  nodeCpuMilli: number;
  nodeMemory: number;
  /** local ConfigMaps and Secrets by name (the --config-dir), undefined when absent */
  configMap(name: string): Record<string, string> | undefined;
  secret(name: string): Record<string, string> | undefined;
}

/** expansion.Expand with a lookup; unknown names stay `$(NAME)`. */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let advance = 1;
    if (rest[0] === '$') out += '$';
    else if (rest[0] === '(') {
      const close = rest.indexOf(')');
      if (close < 0) out += '$(';
      else {
        const name = rest.slice(1, close);
        const v = lookup(name);
        out += v === undefined ? `$(${name})` : v;
        advance = close + 1;
      }
    } else out += '$' + rest[0];
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(m![k])}`)
    .join('\n');
}

/** The value of a downward API fieldRef path (podFieldSelectorRuntimeValue / ExtractFieldPathAsString). */
export function fieldRefValue(
  pod: V1Pod,
  fieldPath: string,
  ctx: Pick<EnvContext, 'podIP' | 'podIPs' | 'hostIP' | 'nodeName'>,
): string {
  const md = pod.metadata ?? {};
  switch (fieldPath) {
    case 'metadata.name':
      return md.name ?? '';
    case 'metadata.namespace':
      return md.namespace ?? '';
    case 'metadata.uid':
      return md.uid ?? '';
    case 'metadata.labels':
      return formatMap(md.labels);
    case 'metadata.annotations':
      return formatMap(md.annotations);
    case 'spec.nodeName':
      return pod.spec?.nodeName || ctx.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
      return ctx.hostIP;
    case 'status.hostIPs':
      return ctx.hostIP;
    case 'status.podIP':
      return ctx.podIP;
    case 'status.podIPs':
      return ctx.podIPs.join(',');
  }
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) return (m[1] === 'labels' ? md.labels : md.annotations)?.[m[2]] ?? '';
  throw new Error(`fieldRef ${JSON.stringify(fieldPath)} is not a supported field`);
}

/** resourceFieldRef: the container's request or limit divided by the divisor, rounded up. */
function resourceFieldValue(
  c: V1Container,
  ref: NonNullable<NonNullable<V1EnvVar['valueFrom']>['resourceFieldRef']>,
  ctx: EnvContext,
): string {
  const divisor = ref.divisor ?? '1';
  const [kind, res] = ref.resource.split('.');
  const q = (kind === 'limits' ? c.resources?.limits : c.resources?.requests)?.[res];
  const what = `resourceFieldRef ${ref.resource}`;
  if (res === 'cpu') {
    const m = q !== undefined ? milliValue(q, what) : kind === 'limits' ? ctx.nodeCpuMilli : 0;
    return String(Math.ceil(m / milliValue(divisor, `${what} divisor`)));
  }
  if (res === 'memory' || res === 'ephemeral-storage') {
    const b =
      q !== undefined ? intValue(q, what) : kind === 'limits' && res === 'memory' ? ctx.nodeMemory : 0;
    return String(Math.ceil(b / intValue(divisor, `${what} divisor`)));
  }
  throw new Error(`${what}: unsupported resource`);
}

function keyRef(
  kind: 'configMap' | 'secret',
  ref: { name?: string; key: string; optional?: boolean },
  ctx: EnvContext,
  varName: string,
): string | undefined {
  const data = kind === 'configMap' ? ctx.configMap(ref.name ?? '') : ctx.secret(ref.name ?? '');
  const v = data?.[ref.key];
  if (v !== undefined) return v;
  if (ref.optional) return undefined;
  const what = data ? `has no key ${JSON.stringify(ref.key)}` : 'is not in --config-dir';
  throw new Error(`env ${varName}: ${kind} ${JSON.stringify(ref.name)} ${what}`);
}

/** The CRI envs of a container, in kubelet's precedence. */
export function containerEnv(pod: V1Pod, c: V1Container, ctx: EnvContext): KeyValue[] {
  const env = new Map<string, string>();
  for (const from of c.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const kind = from.configMapRef ? 'configMap' : 'secret';
    const data = kind === 'configMap' ? ctx.configMap(ref.name ?? '') : ctx.secret(ref.name ?? '');
    if (!data) {
      if (ref.optional) continue;
      throw new Error(
        `container ${c.name} envFrom: ${kind} ${JSON.stringify(ref.name)} is not in --config-dir`,
      );
    }
    for (const [k, v] of Object.entries(data)) env.set((from.prefix ?? '') + k, v);
  }
  const lookup = (n: string): string | undefined => env.get(n);
  for (const e of c.env ?? []) {
    let v: string | undefined = e.value ?? '';
    if (v !== '') v = expand(v, lookup);
    else if (e.valueFrom) {
      const f = e.valueFrom;
      if (f.fieldRef) v = fieldRefValue(pod, f.fieldRef.fieldPath, ctx);
      else if (f.resourceFieldRef) v = resourceFieldValue(c, f.resourceFieldRef, ctx);
      else if (f.configMapKeyRef) v = keyRef('configMap', f.configMapKeyRef, ctx, e.name);
      else if (f.secretKeyRef) v = keyRef('secret', f.secretKeyRef, ctx, e.name);
      if (v === undefined) continue;
    }
    env.set(e.name, v);
  }
  return [...env].map(([key, value]) => ({ key, value }));
}

/** ExpandContainerCommandAndArgs: command and args with `$(NAME)` from the container's environment. */
export function expandCommand(c: V1Container, envs: KeyValue[]): { command: string[]; args: string[] } {
  const text = (v: KeyValue['value']): string =>
    v === undefined || v === null ? '' : typeof v === 'string' ? v : Buffer.from(v).toString('utf8');
  const m = new Map(envs.map((e) => [e.key ?? '', text(e.value)]));
  const lookup = (n: string): string | undefined => m.get(n);
  return {
    command: (c.command ?? []).map((s) => expand(s, lookup)),
    args: (c.args ?? []).map((s) => expand(s, lookup)),
  };
}

/**
 * What the container will run, by Kubernetes' rule against the image's config: command replaces
 * the image's Entrypoint and its Cmd; args alone replace only the Cmd. (The runtime applies this;
 * play uses it to describe containers.)
 */
export function effectiveCommand(
  command: string[],
  args: string[],
  image: { Entrypoint?: string[] | null; Cmd?: string[] | null },
): string[] {
  if (command.length) return [...command, ...args];
  return [...(image.Entrypoint ?? []), ...(args.length ? args : (image.Cmd ?? []))];
}
