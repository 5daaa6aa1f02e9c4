// Choosing and rendering a container's seccomp filter. Profiles (ours and Localhost ones) may be in
// the OCI shape (`architectures`, `syscalls[].names`) or Docker's (`archMap`, `syscalls[].name`,
// `includes`/`excludes` by capability and architecture); both render to the OCI `linux.seccomp`
// for the container's capability set and the host architecture.
import { invalidArgument, short } from '../errors';
import type {
  LinuxContainerSecurityContext__Output,
  LinuxSandboxSecurityContext__Output,
} from '../../api/generated';
import type {
  OciSeccomp,
  OciSeccompArg,
  OciSeccompSyscall,
  SeccompAction,
  SeccompOperator,
} from './spec-types';
import { RUNTIME_DEFAULT_PROFILE } from './seccomp-default';

export interface SeccompFilterCond {
  caps?: string[];
  /** Go architecture names: amd64, arm64, x86, x32, arm, ppc64le, s390x, riscv64 ... */
  arches?: string[];
}

export interface SeccompTemplateRule {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: OciSeccompArg[];
  includes?: SeccompFilterCond;
  excludes?: SeccompFilterCond;
}

export interface SeccompTemplate {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] | null }[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls: SeccompTemplateRule[];
}

export type SeccompProfileType = 'RuntimeDefault' | 'Unconfined' | 'Localhost';

export interface SeccompRequest {
  type: SeccompProfileType;
  /** path of the JSON profile on the node (Localhost only) */
  localhostRef?: string;
}

const ACTIONS = new Set<string>([
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
]);
const OPS = new Set<string>([
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
]);

/** Node's process.arch → Go's GOARCH, the names profiles use in includes/excludes. */
export function goArch(nodeArch: string): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', ppc64: 'ppc64le', loong64: 'loong64' };
  return map[nodeArch] ?? nodeArch;
}

const NATIVE_SCMP_ARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64',
  '386': 'SCMP_ARCH_X86',
  arm64: 'SCMP_ARCH_AARCH64',
  arm: 'SCMP_ARCH_ARM',
  ppc64le: 'SCMP_ARCH_PPC64LE',
  s390x: 'SCMP_ARCH_S390X',
  riscv64: 'SCMP_ARCH_RISCV64',
  mips64: 'SCMP_ARCH_MIPS64',
  mips64le: 'SCMP_ARCH_MIPSEL64',
};

/**
 * Which profile a security context asks for: the `seccomp` field, else the deprecated
 * `seccomp_profile_path` (`runtime/default`, `docker/default`, `unconfined`, `localhost/<path>`);
 * undefined when neither is set (the caller's default applies: Unconfined, like containerd).
 */
export function seccompRequestOf(
  sc: LinuxContainerSecurityContext__Output | LinuxSandboxSecurityContext__Output | null | undefined,
): SeccompRequest | undefined {
  if (!sc) return undefined;
  if (sc.seccomp) {
    const type = sc.seccomp.profile_type;
    if (type === 'Localhost') {
      const ref = sc.seccomp.localhost_ref.replace(/^localhost\//, '');
      if (!ref.startsWith('/'))
        throw invalidArgument(`seccomp: localhost_ref ${short(ref, 4096)} is not an absolute path`);
      return { type, localhostRef: ref };
    }
    if (sc.seccomp.localhost_ref)
      throw invalidArgument('seccomp: localhost_ref is only allowed with profile_type Localhost');
    return { type };
  }
  const p = sc.seccomp_profile_path;
  if (!p) return undefined;
  if (p === 'runtime/default' || p === 'docker/default') return { type: 'RuntimeDefault' };
  if (p === 'unconfined') return { type: 'Unconfined' };
  if (p.startsWith('localhost/')) {
    const ref = p.slice('localhost/'.length);
    if (!ref.startsWith('/'))
      throw invalidArgument(`seccomp_profile_path: ${short(p)} does not name an absolute path`);
    return { type: 'Localhost', localhostRef: ref };
  }
  throw invalidArgument(`seccomp_profile_path: unsupported value ${short(p)}`);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrArr = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

function cond(v: unknown, where: string): SeccompFilterCond | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw invalidArgument(`${where} must be an object`);
  const out: SeccompFilterCond = {};
  for (const k of ['caps', 'arches'] as const) {
    if (v[k] === undefined || v[k] === null) continue;
    if (!isStrArr(v[k])) throw invalidArgument(`${where}.${k} must be a list of strings`);
    out[k] = v[k] as string[];
  }
  return out;
}

/**
 * Checks a Localhost profile's JSON (already parsed by the caller) and returns it as a template.
 * Unknown top-level keys are ignored, wrong types are refused with the offending field named.
 */
export function validateSeccompProfile(json: unknown, source = 'seccomp profile'): SeccompTemplate {
  if (!isObj(json)) throw invalidArgument(`${source}: must be a JSON object`);
  const da = json.defaultAction;
  if (typeof da !== 'string' || !ACTIONS.has(da))
    throw invalidArgument(`${source}: invalid defaultAction ${short(da)}`);
  const t: SeccompTemplate = { defaultAction: da as SeccompAction, syscalls: [] };
  if (json.defaultErrnoRet !== undefined && json.defaultErrnoRet !== null) {
    if (!Number.isInteger(json.defaultErrnoRet))
      throw invalidArgument(`${source}: defaultErrnoRet must be an integer`);
    t.defaultErrnoRet = json.defaultErrnoRet as number;
  }
  if (json.architectures !== undefined && json.architectures !== null) {
    if (!isStrArr(json.architectures))
      throw invalidArgument(`${source}: architectures must be a list of strings`);
    t.architectures = json.architectures;
  }
  if (json.archMap !== undefined && json.archMap !== null) {
    if (!Array.isArray(json.archMap)) throw invalidArgument(`${source}: archMap must be a list`);
    t.archMap = json.archMap.map((m, i) => {
      if (!isObj(m) || typeof m.architecture !== 'string')
        throw invalidArgument(`${source}: archMap[${i}].architecture must be a string`);
      const subs = m.subArchitectures ?? [];
      if (!isStrArr(subs))
        throw invalidArgument(`${source}: archMap[${i}].subArchitectures must be a list of strings`);
      return { architecture: m.architecture, subArchitectures: subs };
    });
  }
  if (json.flags !== undefined && json.flags !== null) {
    if (!isStrArr(json.flags)) throw invalidArgument(`${source}: flags must be a list of strings`);
    t.flags = json.flags;
  }
  for (const k of ['listenerPath', 'listenerMetadata'] as const) {
    if (json[k] === undefined || json[k] === null) continue;
    if (typeof json[k] !== 'string') throw invalidArgument(`${source}: ${k} must be a string`);
    t[k] = json[k] as string;
  }
  const syscalls = json.syscalls ?? [];
  if (!Array.isArray(syscalls)) throw invalidArgument(`${source}: syscalls must be a list`);
  syscalls.forEach((s: unknown, i: number) => {
    const where = `${source}: syscalls[${i}]`;
    if (!isObj(s)) throw invalidArgument(`${where} must be an object`);
    let names: string[];
    if (s.names !== undefined && s.names !== null) {
      if (!isStrArr(s.names)) throw invalidArgument(`${where}.names must be a list of strings`);
      names = s.names;
    } else if (typeof s.name === 'string') {
      names = [s.name];
    } else {
      throw invalidArgument(`${where} has no names`);
    }
    if (typeof s.action !== 'string' || !ACTIONS.has(s.action))
      throw invalidArgument(`${where}: invalid action ${short(s.action)}`);
    const rule: SeccompTemplateRule = { names, action: s.action as SeccompAction };
    if (s.errnoRet !== undefined && s.errnoRet !== null) {
      if (!Number.isInteger(s.errnoRet)) throw invalidArgument(`${where}.errnoRet must be an integer`);
      rule.errnoRet = s.errnoRet as number;
    }
    if (s.args !== undefined && s.args !== null) {
      if (!Array.isArray(s.args)) throw invalidArgument(`${where}.args must be a list`);
      rule.args = s.args.map((a: unknown, j: number) => {
        if (
          !isObj(a) ||
          !Number.isInteger(a.index) ||
          !Number.isInteger(a.value) ||
          typeof a.op !== 'string' ||
          !OPS.has(a.op)
        )
          throw invalidArgument(`${where}.args[${j}] needs integer index and value and a valid op`);
        if (a.valueTwo !== undefined && a.valueTwo !== null && !Number.isInteger(a.valueTwo))
          throw invalidArgument(`${where}.args[${j}].valueTwo must be an integer`);
        const arg: OciSeccompArg = {
          index: a.index as number,
          value: a.value as number,
          op: a.op as SeccompOperator,
        };
        if (typeof a.valueTwo === 'number' && a.valueTwo !== 0) arg.valueTwo = a.valueTwo;
        return arg;
      });
    }
    rule.includes = cond(s.includes, `${where}.includes`);
    rule.excludes = cond(s.excludes, `${where}.excludes`);
    t.syscalls.push(rule);
  });
  return t;
}

/** Renders a template for a capability set and architecture (Go name) into OCI `linux.seccomp`. */
export function renderSeccomp(t: SeccompTemplate, caps: readonly string[], arch: string): OciSeccomp {
  const capSet = new Set(caps);
  const out: OciSeccomp = { defaultAction: t.defaultAction };
  if (t.defaultErrnoRet !== undefined) out.defaultErrnoRet = t.defaultErrnoRet;
  let arches = t.architectures ? [...t.architectures] : [];
  if (arches.length === 0 && t.archMap) {
    const native = NATIVE_SCMP_ARCH[arch];
    for (const m of t.archMap)
      if (m.architecture === native) arches = [m.architecture, ...(m.subArchitectures ?? [])];
  }
  if (arches.length > 0) out.architectures = arches;
  if (t.flags?.length) out.flags = [...t.flags];
  if (t.listenerPath) out.listenerPath = t.listenerPath;
  if (t.listenerMetadata) out.listenerMetadata = t.listenerMetadata;
  const syscalls: OciSeccompSyscall[] = [];
  for (const r of t.syscalls) {
    if (r.includes?.caps?.some((c) => !capSet.has(c))) continue;
    if (r.includes?.arches?.length && !r.includes.arches.includes(arch)) continue;
    if (r.excludes?.caps?.some((c) => capSet.has(c))) continue;
    if (r.excludes?.arches?.includes(arch)) continue;
    const s: OciSeccompSyscall = { names: [...r.names], action: r.action };
    if (r.errnoRet !== undefined) s.errnoRet = r.errnoRet;
    if (r.args?.length) s.args = r.args.map((a) => ({ ...a }));
    syscalls.push(s);
  }
  out.syscalls = syscalls;
  return out;
}

export interface SeccompOptions {
  privileged: boolean;
  /** from seccompRequestOf; undefined → `unsetProfile` */
  request?: SeccompRequest;
  /** what an unset request means; default Unconfined (Kubernetes' and containerd's default) */
  unsetProfile?: 'Unconfined' | 'RuntimeDefault';
  /** the parsed JSON of the Localhost profile (the caller reads request.localhostRef) */
  localhostProfile?: unknown;
  /** the container's bounding capabilities, for capability-conditional rules */
  capabilities: readonly string[];
  /** Go architecture name; default from process.arch */
  arch?: string;
}

/** The seccomp filter for a container, or undefined for none (privileged, Unconfined). */
export function buildSeccomp(opts: SeccompOptions): OciSeccomp | undefined {
  if (opts.privileged) return undefined;
  const type = opts.request?.type ?? opts.unsetProfile ?? 'Unconfined';
  const arch = opts.arch ?? goArch(process.arch);
  switch (type) {
    case 'Unconfined':
      return undefined;
    case 'RuntimeDefault':
      return renderSeccomp(RUNTIME_DEFAULT_PROFILE, opts.capabilities, arch);
    case 'Localhost': {
      if (opts.localhostProfile === undefined)
        throw invalidArgument(
          `seccomp: Localhost profile ${short(opts.request?.localhostRef ?? '', 4096)} was not loaded`,
        );
      const t = validateSeccompProfile(
        opts.localhostProfile,
        `seccomp Localhost profile ${short(opts.request?.localhostRef ?? '', 4096)}`,
      );
      return renderSeccomp(t, opts.capabilities, arch);
    }
    default:
      throw invalidArgument(`seccomp: unknown profile type ${short(type)}`);
  }
}
