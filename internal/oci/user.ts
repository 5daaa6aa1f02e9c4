// Resolving the user a container runs as, the way Kubernetes runtimes do: the CRI's run_as_username
// / run_as_user / run_as_group win over the image's `User`; names are looked up in the container's
// own /etc/passwd and /etc/group (the caller reads those files from the image), numeric ids need no
// entry. Supplemental groups: the primary gid (so setgroups keeps it, as containerd does), the
// groups that list the user by name in /etc/group (policy Merge only), then the requested ones.
import { invalidArgument, short } from '../errors';
import type {
  LinuxContainerSecurityContext__Output,
  LinuxSandboxSecurityContext__Output,
} from '../../api/generated';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** groups passed to setgroups(2): primary gid first, deduplicated, in order of origin */
  additionalGids: number[];
  /** from /etc/passwd; "/" when the user has no entry */
  home: string;
  /** the passwd name, when the user has an entry */
  username?: string;
}

export type SupplementalGroupsPolicy = 'Merge' | 'Strict';

/** What the request and the image ask for; every field optional. */
export interface UserRequest {
  runAsUser?: number;
  runAsUsername?: string;
  runAsGroup?: number;
  /** the image config's `User` */
  imageUser?: string;
  supplementalGroups?: number[];
  supplementalGroupsPolicy?: SupplementalGroupsPolicy;
}

/** The container's /etc/passwd and /etc/group contents; undefined when the file is missing. */
export interface UserFiles {
  passwd?: Buffer | string;
  group?: Buffer | string;
}

const MAX_ID = 0xfffffffe; // (uid_t)-1 is "no change" to the kernel, never a real id

function isNumeric(s: string): boolean {
  return /^[0-9]+$/.test(s);
}

/** Parses a uid/gid from a string or int64 decimal; throws invalidArgument naming `field`. */
export function parseId(value: string | number, field: string): number {
  const s = String(value).trim();
  if (!isNumeric(s)) throw invalidArgument(`${field}: ${short(s)} is not a valid id`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n > MAX_ID) throw invalidArgument(`${field}: ${short(s)} is out of range`);
  return n;
}

function lines(data: Buffer | string | undefined): string[] {
  if (data === undefined) return [];
  return (typeof data === 'string' ? data : data.toString('utf8')).split('\n');
}

export function parsePasswd(data: Buffer | string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of lines(data)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    if (f.length < 4 || f[0] === '' || !isNumeric(f[2]) || !isNumeric(f[3])) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/', shell: f[6] ?? '' });
  }
  return out;
}

export function parseGroup(data: Buffer | string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const raw of lines(data)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    if (f.length < 3 || f[0] === '' || !isNumeric(f[2])) continue;
    const members = (f[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '');
    out.push({ name: f[0], gid: Number(f[2]), members });
  }
  return out;
}

function dedupe(ids: number[]): number[] {
  return [...new Set(ids)];
}

/** Splits an image `User` value (`uid`, `name`, `uid:gid`, `name:group`, ...) into its parts. */
export function splitUserString(user: string): { user: string; group?: string } {
  const i = user.indexOf(':');
  if (i < 0) return { user };
  return { user: user.slice(0, i), group: user.slice(i + 1) };
}

/** Resolves the process user. Throws invalidArgument when a name is not found. */
export function resolveUser(req: UserRequest, files: UserFiles): ResolvedUser {
  const passwd = parsePasswd(files.passwd);
  const groups = parseGroup(files.group);

  let userPart: string;
  let groupPart: string | undefined;
  let source: string;
  if (req.runAsUsername) {
    userPart = req.runAsUsername;
    source = 'run_as_username';
  } else if (req.runAsUser !== undefined) {
    userPart = String(req.runAsUser);
    source = 'run_as_user';
  } else {
    const split = splitUserString((req.imageUser ?? '').trim());
    userPart = split.user;
    groupPart = split.group;
    source = "the image's User";
  }

  let uid: number;
  let entry: PasswdEntry | undefined;
  if (userPart === '') {
    uid = 0;
    entry = passwd.find((p) => p.uid === 0);
  } else if (isNumeric(userPart)) {
    uid = parseId(userPart, source);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) {
      throw invalidArgument(
        `${source}: user ${short(userPart)} not found in the container's /etc/passwd` +
          (files.passwd === undefined ? ' (the image has no /etc/passwd)' : ''),
      );
    }
    uid = entry.uid;
  }

  let gid = entry?.gid ?? 0;
  if (req.runAsGroup !== undefined) {
    gid = req.runAsGroup;
  } else if (groupPart !== undefined && groupPart !== '') {
    if (isNumeric(groupPart)) {
      gid = parseId(groupPart, source);
    } else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) {
        throw invalidArgument(
          `${source}: group ${short(groupPart)} not found in the container's /etc/group` +
            (files.group === undefined ? ' (the image has no /etc/group)' : ''),
        );
      }
      gid = g.gid;
    }
  }

  const additional: number[] = [gid];
  const policy = req.supplementalGroupsPolicy ?? 'Merge';
  if (policy === 'Merge' && entry) {
    const name = entry.name;
    for (const g of groups) if (g.members.includes(name)) additional.push(g.gid);
  }
  for (const g of req.supplementalGroups ?? []) additional.push(g);

  return { uid, gid, additionalGids: dedupe(additional), home: entry?.home ?? '/', username: entry?.name };
}

type SecurityContext = LinuxContainerSecurityContext__Output | LinuxSandboxSecurityContext__Output;

/** Translates a CRI security context (container or pod) into a UserRequest. */
export function userRequestFrom(sc: SecurityContext | null | undefined, imageUser?: string): UserRequest {
  const req: UserRequest = { imageUser };
  if (!sc) return req;
  if ('run_as_username' in sc && sc.run_as_username) req.runAsUsername = sc.run_as_username;
  if (sc.run_as_user) req.runAsUser = parseId(sc.run_as_user.value, 'run_as_user');
  if (sc.run_as_group) req.runAsGroup = parseId(sc.run_as_group.value, 'run_as_group');
  req.supplementalGroups = (sc.supplemental_groups ?? []).map((g) => parseId(g, 'supplemental_groups'));
  req.supplementalGroupsPolicy = sc.supplemental_groups_policy === 'Strict' ? 'Strict' : 'Merge';
  return req;
}
