// Resolving an image volume's `image_sub_path` inside the image's root, before anything is bound.
//
// The walk is done by hand, one component at a time, through a lookup of the read-only image view:
// a symlink's target is followed inside the image (an absolute target starts again from the image
// root, as it would inside the container: RESOLVE_IN_ROOT semantics), but a `..` that would climb
// above the image root, in the request or in a symlink's target, is refused rather than clamped:
// the caller asked for something outside the image. The result has no symlink left in it, and the
// view is read-only and never changes, so binding it afterwards cannot be raced.
import * as path from 'node:path';
import { invalidArgument, short } from '../errors';

export type EntryKind = 'dir' | 'file' | 'symlink' | 'other';

/** Read access to the image root; paths are relative to it, '/'-separated, '' being the root. */
export interface ImageTree {
  /** what lstat(2) finds at `rel`; undefined when nothing is there */
  kind(rel: string): Promise<EntryKind | undefined>;
  readlink(rel: string): Promise<string>;
}

/** Symlinks followed at most, as the kernel's MAXSYMLINKS. */
export const MAX_SYMLINKS = 40;

const parts = (p: string): string[] => p.split('/').filter((s) => s !== '' && s !== '.');

/**
 * The directory `subPath` names inside the image, relative to the image root with every symlink
 * resolved ('' for the root itself). INVALID_ARGUMENT when it is absolute, does not exist, is not a
 * directory, loops, or escapes the image through `..` or a symlink; `where` prefixes the message.
 */
export async function resolveImageSubPath(subPath: string, tree: ImageTree, where: string): Promise<string> {
  const asked = short(subPath);
  if (subPath.includes('\0')) throw invalidArgument(`${where}: image_sub_path ${asked} contains a NUL byte`);
  if (path.posix.isAbsolute(subPath))
    throw invalidArgument(`${where}: image_sub_path ${asked} must be relative to the image root`);
  const done: string[] = [];
  let todo = parts(subPath);
  let links = 0;
  /** the last symlink followed, to name it when the walk then climbs out */
  let lastLink: string | undefined;
  while (todo.length > 0) {
    const c = todo.shift() as string;
    if (c === '..') {
      if (done.length === 0)
        throw invalidArgument(
          lastLink
            ? `${where}: image_sub_path ${asked} escapes the image through the symlink ${lastLink}`
            : `${where}: image_sub_path ${asked} escapes the image through '..'`,
        );
      done.pop();
      continue;
    }
    const rel = [...done, c].join('/');
    const kind = await tree.kind(rel);
    if (kind === undefined)
      throw invalidArgument(
        `${where}: image_sub_path ${asked} does not exist in the image (no ${short(rel)})`,
      );
    if (kind === 'symlink') {
      if (++links > MAX_SYMLINKS)
        throw invalidArgument(`${where}: image_sub_path ${asked}: too many levels of symbolic links`);
      const target = await tree.readlink(rel);
      if (path.posix.isAbsolute(target)) done.length = 0;
      lastLink = `${short(rel)} -> ${short(target)}`;
      todo = [...parts(target), ...todo];
      continue;
    }
    if (kind !== 'dir')
      throw invalidArgument(`${where}: image_sub_path ${asked}: ${short(rel)} is not a directory`);
    done.push(c);
  }
  return done.join('/');
}
