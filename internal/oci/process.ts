// The process part of a container: argv from CRI command/args and the image's Entrypoint/Cmd
// (Kubernetes' rules), the environment merged over the image's, and the working directory.
import * as path from 'node:path';
import { invalidArgument, short } from '../errors';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Kubernetes' rules (the same as containerd's and Docker's):
 * - command set: command + args; the image's Entrypoint and Cmd are ignored;
 * - only args: image Entrypoint + args;
 * - neither: image Entrypoint + Cmd;
 * - an Entrypoint of exactly [""] means "no entrypoint" (Docker's reset marker).
 */
export function buildArgs(
  command: string[] | undefined,
  args: string[] | undefined,
  image: { Entrypoint?: string[] | null; Cmd?: string[] | null } | undefined,
): string[] {
  const cmd = command ?? [];
  let rest = args ?? [];
  let head: string[] = cmd;
  if (cmd.length === 0) {
    if (rest.length === 0) rest = [...(image?.Cmd ?? [])];
    const ep = image?.Entrypoint ?? [];
    head = ep.length === 1 && ep[0] === '' ? [] : [...ep];
  }
  const argv = [...head, ...rest];
  if (argv.length === 0)
    throw invalidArgument(
      'no command specified: the request has no command/args and the image no Entrypoint/Cmd',
    );
  return argv;
}

function envKey(entry: string): string {
  const i = entry.indexOf('=');
  return i < 0 ? entry : entry.slice(0, i);
}

/** Sets or appends `KEY=value` entries, replacing an existing key in place (order kept). */
function setEnv(env: string[], index: Map<string, number>, entry: string): void {
  const key = envKey(entry);
  const at = index.get(key);
  if (at === undefined) {
    index.set(key, env.length);
    env.push(entry);
  } else {
    env[at] = entry;
  }
}

/** A CRI KeyValue as decoded (bytes) or as tests and older callers write it (text). */
export interface EnvVar {
  key: string;
  value: Buffer | Uint8Array | string;
}

/**
 * An environment variable's value as text. KeyValue.value is bytes on the wire since cri-api's main
 * line (a v0.32 client's string arrives as its UTF-8 bytes); the OCI spec holds env as JSON strings,
 * so a value that is not UTF-8 cannot be passed on faithfully and is refused.
 */
export function envValue(kv: EnvVar): string {
  if (typeof kv.value === 'string') return kv.value;
  const buf = Buffer.from(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength);
  const text = buf.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(buf))
    throw invalidArgument(`envs: value of ${short(kv.key)} is not valid UTF-8`);
  return text;
}

/**
 * The environment: a default PATH, HOSTNAME, then the image's Env, then the request's envs; a later
 * entry with the same name replaces the earlier one where it stood.
 */
export function buildEnv(
  imageEnv: string[] | undefined,
  envs: EnvVar[] | undefined,
  hostname?: string,
): string[] {
  const env: string[] = [];
  const index = new Map<string, number>();
  setEnv(env, index, `PATH=${DEFAULT_PATH}`);
  if (hostname) setEnv(env, index, `HOSTNAME=${hostname}`);
  for (const e of imageEnv ?? []) if (e !== '') setEnv(env, index, e);
  for (const kv of envs ?? []) {
    if (!kv.key) throw invalidArgument('envs: an environment variable has an empty name');
    if (kv.key.includes('=') || kv.key.includes('\0'))
      throw invalidArgument(`envs: invalid environment variable name ${short(kv.key)}`);
    const val = envValue(kv);
    if (val.includes('\0')) throw invalidArgument(`envs: value of ${short(kv.key)} contains a NUL byte`);
    setEnv(env, index, `${kv.key}=${val}`);
  }
  return env;
}

/** The request's working_dir, else the image's WorkingDir, else "/"; it must be absolute. */
export function buildCwd(workingDir: string | undefined, imageWorkingDir: string | undefined): string {
  const cwd = workingDir || imageWorkingDir || '/';
  if (!path.isAbsolute(cwd)) throw invalidArgument(`working_dir ${short(cwd)} is not an absolute path`);
  return path.posix.normalize(cwd);
}
