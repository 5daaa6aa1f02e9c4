// Running one CNI plugin per the CNI spec: the environment (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
// CNI_IFNAME, CNI_ARGS, CNI_PATH), the network config on stdin (with name, cniVersion, prevResult
// and runtimeConfig for the capabilities the plugin declares), the result or error JSON on stdout.
import { promises as fsp, constants as fsc } from 'node:fs';
import * as path from 'node:path';
import { BerthError, Status, invalidArgument, short } from '../errors';
import type { NetworkConfigList, PluginConf } from './conflist';
import { SYSTEM_PATH, run } from '../util/run';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** empty or absent: every host address */
  hostIP?: string;
}

export interface DnsArgs {
  servers?: string[];
  searches?: string[];
  options?: string[];
}

/** Rates in bits per second, bursts in bits, as the bandwidth plugin's `bandwidth` capability wants. */
export interface BandwidthArgs {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

export interface IpRange {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

/** Values for the CNI capabilities Berth knows (CONVENTIONS.md of the CNI project). */
export interface CapabilityArgs {
  portMappings?: PortMapping[];
  dns?: DnsArgs;
  bandwidth?: BandwidthArgs;
  /** range sets, one per address family: [[{subnet: '10.244.1.0/24'}], [{subnet: 'fd00::/64'}]] */
  ipRanges?: IpRange[][];
}

/** The pod as the K8S_POD_* CNI_ARGS name it. */
export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/** A plugin failed: its error JSON (code, msg, details) or its exit status and stderr. */
export class CniPluginError extends BerthError {
  constructor(
    readonly plugin: string,
    readonly command: CniCommand,
    readonly cniCode: number | undefined,
    readonly msg: string,
    readonly details?: string,
  ) {
    super(
      Status.INTERNAL,
      `CNI plugin ${plugin} ${command} failed${cniCode !== undefined ? ` (code ${cniCode})` : ''}: ${msg}${details ? `: ${details}` : ''}`,
    );
    this.name = 'CniPluginError';
  }
}

// Printable ASCII without space, `;` and `=` (they delimit CNI_ARGS), bounded.
const ARG_VALUE_RE = /^[\x21-\x3a\x3c\x3e-\x7e]*$/;
const MAX_ARG_LEN = 253;
// The CNI spec's container id: letters, digits, `_`, `.`, `-`; must start with a letter or digit.
const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Validates a value that goes into CNI_ARGS; `field` names it in the INVALID_ARGUMENT error. */
export function validateCniArgValue(field: string, value: unknown, allowEmpty = false): string {
  if (typeof value !== 'string') throw invalidArgument(`${field} must be a string`);
  if (value === '' && !allowEmpty) throw invalidArgument(`${field} must not be empty`);
  if (value.length > MAX_ARG_LEN) throw invalidArgument(`${field} is longer than ${MAX_ARG_LEN} characters`);
  if (!ARG_VALUE_RE.test(value))
    throw invalidArgument(
      `${field} ${short(value)} contains ';', '=', a space or a character other than printable ASCII`,
    );
  return value;
}

export function validateContainerId(id: unknown): string {
  if (typeof id !== 'string' || !CONTAINER_ID_RE.test(id))
    throw invalidArgument(
      `invalid pod sandbox id ${short(id)} for CNI (letters, digits, '_', '.', '-'; at most 128)`,
    );
  return id;
}

/** The CNI_ARGS string for a pod, after validating each value. */
export function buildCniArgs(podId: string, pod: PodRef): string {
  const ns = validateCniArgValue('pod namespace', pod.namespace);
  const name = validateCniArgValue('pod name', pod.name);
  const uid = validateCniArgValue('pod uid', pod.uid, true);
  const id = validateContainerId(podId);
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=${uid}`;
}

/** The runtimeConfig for a plugin: only capabilities it declares true and that have a value. */
export function runtimeConfigFor(plugin: PluginConf, args: CapabilityArgs): Record<string, unknown> {
  const caps = plugin.capabilities as Record<string, unknown> | undefined;
  const rc: Record<string, unknown> = {};
  if (!caps) return rc;
  if (caps.portMappings === true && args.portMappings?.length)
    rc.portMappings = args.portMappings.map((p) => ({
      hostPort: p.hostPort,
      containerPort: p.containerPort,
      protocol: p.protocol,
      ...(p.hostIP ? { hostIP: p.hostIP } : {}),
    }));
  const dns = args.dns;
  if (caps.dns === true && dns && (dns.servers?.length || dns.searches?.length || dns.options?.length))
    rc.dns = { servers: dns.servers ?? [], searches: dns.searches ?? [], options: dns.options ?? [] };
  if (caps.bandwidth === true && args.bandwidth && Object.keys(args.bandwidth).length)
    rc.bandwidth = args.bandwidth;
  if (caps.ipRanges === true && args.ipRanges?.length) rc.ipRanges = args.ipRanges;
  return rc;
}

/** The JSON a plugin reads on stdin. */
export function buildPluginConf(
  list: Pick<NetworkConfigList, 'name' | 'cniVersion'>,
  plugin: PluginConf,
  capabilityArgs: CapabilityArgs,
  prevResult?: unknown,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  delete conf.prevResult;
  const rc = runtimeConfigFor(plugin, capabilityArgs);
  const given = plugin.runtimeConfig;
  if (Object.keys(rc).length)
    conf.runtimeConfig = { ...(typeof given === 'object' && given !== null ? given : {}), ...rc };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** Absolute path of the plugin binary `type` in the first bin dir that has it, or undefined. */
export async function findPlugin(type: string, binDirs: readonly string[]): Promise<string | undefined> {
  for (const dir of binDirs) {
    const p = path.join(dir, type);
    try {
      await fsp.access(p, fsc.X_OK);
      const st = await fsp.stat(p);
      if (st.isFile()) return p;
    } catch {
      // not in this dir
    }
  }
  return undefined;
}

export interface PluginInvocation {
  binary: string;
  command: CniCommand;
  containerId: string;
  /** empty when the namespace is gone (DEL) */
  netns: string;
  ifName: string;
  cniArgs: string;
  binDirs: readonly string[];
  conf: Record<string, unknown>;
  timeoutMs: number;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Runs one plugin. Returns its parsed stdout JSON (undefined when it printed nothing, as DEL and
 * CHECK may). Throws CniPluginError on a non-zero exit, a timeout or unparseable ADD output.
 */
export async function execPlugin(inv: PluginInvocation): Promise<unknown> {
  const type = String(inv.conf.type);
  const env: NodeJS.ProcessEnv = {
    // Plugins run iptables, ip and friends; a service manager's PATH may lack the sbin dirs.
    PATH: `${process.env.PATH ? `${process.env.PATH}:` : ''}${SYSTEM_PATH}`,
    CNI_COMMAND: inv.command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netns,
    CNI_IFNAME: inv.ifName,
    CNI_ARGS: inv.cniArgs,
    CNI_PATH: inv.binDirs.join(':'),
  };
  let r;
  try {
    r = await run(inv.binary, [], { env, input: JSON.stringify(inv.conf), timeoutMs: inv.timeoutMs });
  } catch (err) {
    throw new CniPluginError(type, inv.command, undefined, (err as Error).message);
  }
  const out = r.stdout.trim();
  if (r.timedOut)
    throw new CniPluginError(type, inv.command, undefined, `timed out after ${inv.timeoutMs} ms`);
  if (r.code !== 0) {
    const e = parseJson(out) as Record<string, unknown> | undefined;
    if (e && typeof e === 'object' && typeof e.msg === 'string') {
      throw new CniPluginError(
        type,
        inv.command,
        typeof e.code === 'number' ? e.code : undefined,
        e.msg,
        typeof e.details === 'string' && e.details ? e.details : undefined,
      );
    }
    const how = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
    const text = (out || r.stderr.trim()).split('\n').slice(-3).join(' | ').slice(0, 500);
    throw new CniPluginError(type, inv.command, undefined, text ? `${how}: ${text}` : how);
  }
  if (!out) {
    if (inv.command === 'ADD') throw new CniPluginError(type, inv.command, undefined, 'printed no result');
    return undefined;
  }
  const parsed = parseJson(out);
  if (parsed === undefined)
    throw new CniPluginError(type, inv.command, undefined, `printed invalid JSON: ${short(out)}`);
  return parsed;
}
