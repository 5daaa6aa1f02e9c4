// Reading a `Localhost` seccomp profile from the host at create time. The path is absolute (kubelet
// passes paths under its seccomp dir; any absolute path is accepted, as containerd and CRI-O do).
// Every failure is the caller's: INVALID_ARGUMENT naming the path, before anything is created.
import { promises as fsp, type Stats } from 'node:fs';
import { errMessage, invalidArgument, short } from '../errors';
import { validateSeccompProfile, type SeccompRequest } from './seccomp';

/** Profiles are small (Docker's default is ~20 KiB); a larger file is refused, not read. */
export const MAX_SECCOMP_PROFILE_BYTES = 1024 * 1024;

/** The whole path in messages (PATH_MAX), with non-printable characters replaced. */
const pathOf = (p: string): string => short(p, 4096);

function cannot(err: unknown): string {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
    ? 'no such file on the node'
    : `cannot be read: ${errMessage(err)}`;
}

/**
 * The parsed and checked JSON of a Localhost profile, or undefined when the request is not
 * Localhost (or the container is privileged: no filter applies, so the file is not needed).
 */
export async function loadLocalhostSeccomp(
  request: SeccompRequest | undefined,
  privileged = false,
): Promise<unknown> {
  if (privileged || request?.type !== 'Localhost') return undefined;
  const file = request.localhostRef ?? '';
  const where = `seccomp Localhost profile ${pathOf(file)}`;
  if (!file.startsWith('/')) throw invalidArgument(`${where}: not an absolute path`);
  let st: Stats;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    throw invalidArgument(`${where}: ${cannot(err)}`);
  }
  if (!st.isFile()) throw invalidArgument(`${where}: not a regular file`);
  if (st.size > MAX_SECCOMP_PROFILE_BYTES)
    throw invalidArgument(`${where}: ${st.size} bytes, more than ${MAX_SECCOMP_PROFILE_BYTES}`);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw invalidArgument(`${where}: ${cannot(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`${where}: not valid JSON: ${errMessage(err)}`);
  }
  validateSeccompProfile(json, where);
  return json;
}
