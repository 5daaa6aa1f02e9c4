// CNI results: the JSON a plugin prints on a successful ADD, in the 0.1/0.2 shape (`ip4`/`ip6`) or the
// 0.3+/1.x shape (`interfaces`, `ips` with an interface index), normalised to one type; and the
// choice of pod IPs from it.
import { isIP } from 'node:net';

export interface CniInterface {
  name: string;
  mac?: string;
  /** the netns path for interfaces inside the pod; empty or absent for host-side ones */
  sandbox?: string;
}

export interface CniIPConfig {
  /** CIDR notation, e.g. 10.88.0.5/16 */
  address: string;
  gateway?: string;
  /** index into `interfaces` */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces: CniInterface[];
  ips: CniIPConfig[];
  routes: CniRoute[];
  dns?: CniDns;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
}

function parseCidr(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new Error(`${where}: address is not a string`);
  const slash = v.indexOf('/');
  const ip = slash < 0 ? v : v.slice(0, slash);
  if (!isIP(ip)) throw new Error(`${where}: ${JSON.stringify(v).slice(0, 60)} is not an IP address`);
  return v;
}

function parseRoutes(v: unknown): CniRoute[] {
  if (!Array.isArray(v)) return [];
  return v
    .filter(isObj)
    .filter((r) => typeof r.dst === 'string')
    .map((r) => ({ dst: r.dst as string, ...(typeof r.gw === 'string' ? { gw: r.gw } : {}) }));
}

function parseDns(v: unknown): CniDns | undefined {
  if (!isObj(v)) return undefined;
  const d: CniDns = {};
  const ns = strList(v.nameservers);
  if (ns) d.nameservers = ns;
  if (typeof v.domain === 'string') d.domain = v.domain;
  const s = strList(v.search);
  if (s) d.search = s;
  const o = strList(v.options);
  if (o) d.options = o;
  return Object.keys(d).length ? d : undefined;
}

/** Normalises a plugin's result JSON. Throws when it is not a recognisable CNI result. */
export function parseCniResult(raw: unknown, fallbackVersion: string): CniResult {
  if (!isObj(raw)) throw new Error('CNI result is not a JSON object');
  const cniVersion = typeof raw.cniVersion === 'string' && raw.cniVersion ? raw.cniVersion : fallbackVersion;
  const dns = parseDns(raw.dns);
  // 0.1.0 / 0.2.0: one address per family, no interfaces.
  if (raw.ips === undefined && (raw.ip4 !== undefined || raw.ip6 !== undefined)) {
    const ips: CniIPConfig[] = [];
    const routes: CniRoute[] = [];
    for (const key of ['ip4', 'ip6'] as const) {
      const c = raw[key];
      if (c === undefined) continue;
      if (!isObj(c)) throw new Error(`CNI result: ${key} is not an object`);
      ips.push({
        address: parseCidr(c.ip, key),
        ...(typeof c.gateway === 'string' ? { gateway: c.gateway } : {}),
      });
      routes.push(...parseRoutes(c.routes));
    }
    return { cniVersion, interfaces: [], ips, routes, ...(dns ? { dns } : {}) };
  }
  if (raw.interfaces !== undefined && !Array.isArray(raw.interfaces))
    throw new Error('CNI result: interfaces is not a list');
  if (raw.ips !== undefined && !Array.isArray(raw.ips)) throw new Error('CNI result: ips is not a list');
  const interfaces: CniInterface[] = ((raw.interfaces as unknown[] | undefined) ?? []).map((it, i) => {
    if (!isObj(it) || typeof it.name !== 'string')
      throw new Error(`CNI result: interfaces[${i}] has no name`);
    return {
      name: it.name,
      ...(typeof it.mac === 'string' ? { mac: it.mac } : {}),
      ...(typeof it.sandbox === 'string' ? { sandbox: it.sandbox } : {}),
    };
  });
  const ips: CniIPConfig[] = ((raw.ips as unknown[] | undefined) ?? []).map((c, i) => {
    if (!isObj(c)) throw new Error(`CNI result: ips[${i}] is not an object`);
    const ipc: CniIPConfig = { address: parseCidr(c.address, `ips[${i}]`) };
    if (typeof c.gateway === 'string') ipc.gateway = c.gateway;
    if (typeof c.interface === 'number' && Number.isInteger(c.interface)) ipc.interface = c.interface;
    return ipc;
  });
  return { cniVersion, interfaces, ips, routes: parseRoutes(raw.routes), ...(dns ? { dns } : {}) };
}

/**
 * The pod's IPs (bare addresses, no prefix length) from a result: those on the interface named
 * `ifName` inside the sandbox, or every IP when the result does not tie IPs to interfaces. IPv4
 * first, then IPv6 (Kubernetes takes the first as the pod's primary IP), duplicates dropped.
 */
export function podIPs(result: CniResult, ifName: string): string[] {
  const onPod = (c: CniIPConfig): boolean => {
    if (c.interface === undefined) return true;
    const it = result.interfaces[c.interface];
    // An index out of range says nothing about the interface; keep the IP rather than lose it.
    if (!it) return true;
    return it.name === ifName && !!it.sandbox;
  };
  const seen = new Set<string>();
  const v4: string[] = [];
  const v6: string[] = [];
  for (const c of result.ips) {
    if (!onPod(c)) continue;
    const ip = c.address.split('/')[0];
    if (seen.has(ip)) continue;
    seen.add(ip);
    (isIP(ip) === 6 ? v6 : v4).push(ip);
  }
  return [...v4, ...v6];
}
