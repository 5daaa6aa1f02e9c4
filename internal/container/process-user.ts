// The identity a container's first process really has (ContainerStatus.user, KEP-3619): read from
// /proc/<pid>/status once runc has created the container (runc init has called setgroups/setgid/
// setuid before `runc create` returns; it then only waits to exec), not echoed from the request.
// Ids in /proc are the reader's (the host's); a container in a user namespace reports them
// mapped back through /proc/<pid>/uid_map and gid_map, so the status shows the container's ids.
import { promises as fsp } from 'node:fs';

export interface ProcessUser {
  uid: number;
  gid: number;
  /** the supplementary groups (setgroups), ascending as the kernel keeps them */
  additionalGids: number[];
}

/** One line of uid_map/gid_map: `inside outside length`, outside in the reader's namespace. */
export interface IdMapRange {
  inside: number;
  outside: number;
  length: number;
}

/** The kernel's overflowuid/overflowgid: what an id without a mapping shows as. */
export const OVERFLOW_ID = 65534;

const ID = /^[0-9]+$/;

/** Uid, Gid (the real ids) and Groups of a /proc/<pid>/status text; undefined when a line is missing. */
export function parseStatusUser(text: string): ProcessUser | undefined {
  const fields = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0)
      fields.set(
        line.slice(0, i),
        line
          .slice(i + 1)
          .trim()
          .split(/\s+/)
          .filter((x) => x !== ''),
      );
  }
  const uid = fields.get('Uid')?.[0];
  const gid = fields.get('Gid')?.[0];
  const groups = fields.get('Groups');
  if (uid === undefined || gid === undefined || groups === undefined) return undefined;
  if (!ID.test(uid) || !ID.test(gid) || !groups.every((g) => ID.test(g))) return undefined;
  return { uid: Number(uid), gid: Number(gid), additionalGids: groups.map(Number) };
}

export function parseIdMap(text: string): IdMapRange[] {
  const out: IdMapRange[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3 || !f.every((x) => ID.test(x))) continue;
    out.push({ inside: Number(f[0]), outside: Number(f[1]), length: Number(f[2]) });
  }
  return out;
}

/** The id inside the namespace for an id of the reader's; OVERFLOW_ID when it has no mapping. */
export function idInside(id: number, map: IdMapRange[]): number {
  for (const r of map) if (id >= r.outside && id < r.outside + r.length) return r.inside + (id - r.outside);
  return OVERFLOW_ID;
}

/** True for the initial user namespace's map (`0 0 4294967295`): ids need no translation. */
function isIdentity(map: IdMapRange[]): boolean {
  return map.length === 1 && map[0].inside === 0 && map[0].outside === 0 && map[0].length === 4294967295;
}

/** Translates a status read from outside into the container's ids. */
export function userInside(u: ProcessUser, uidMap: IdMapRange[], gidMap: IdMapRange[]): ProcessUser {
  if (isIdentity(uidMap) && isIdentity(gidMap)) return u;
  return {
    uid: idInside(u.uid, uidMap),
    gid: idInside(u.gid, gidMap),
    additionalGids: u.additionalGids.map((g) => idInside(g, gidMap)),
  };
}

/** The process's ids as the container sees them; throws when /proc cannot be read or parsed. */
export async function readProcessUser(pid: number, procRoot = '/proc'): Promise<ProcessUser> {
  const dir = `${procRoot}/${pid}`;
  const [status, uidMap, gidMap] = await Promise.all([
    fsp.readFile(`${dir}/status`, 'utf8'),
    fsp.readFile(`${dir}/uid_map`, 'utf8'),
    fsp.readFile(`${dir}/gid_map`, 'utf8'),
  ]);
  const u = parseStatusUser(status);
  if (!u) throw new Error(`${dir}/status has no Uid, Gid and Groups lines`);
  return userInside(u, parseIdMap(uidMap), parseIdMap(gidMap));
}
