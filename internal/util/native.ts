// Typed access to Berth's native addon (native/, built with `npm run build:native`): the Linux
// syscalls Node does not expose. Loaded lazily on first use so that modules importing this file
// still load (and their pure parts stay testable) where the addon has not been built.
import { existsSync } from 'node:fs';
import * as path from 'node:path';

/** Errors thrown by the addon look like Node's fs errors. */
export interface NativeError extends Error {
  code: string;
  /** negative errno, as libuv reports it */
  errno: number;
  syscall: string;
  path?: string;
}

export interface MountConstants {
  MS_RDONLY: number;
  MS_NOSUID: number;
  MS_NODEV: number;
  MS_NOEXEC: number;
  MS_REMOUNT: number;
  MS_BIND: number;
  MS_MOVE: number;
  MS_REC: number;
  MS_PRIVATE: number;
  MS_SLAVE: number;
  MS_SHARED: number;
  MS_UNBINDABLE: number;
  MNT_FORCE: number;
  MNT_DETACH: number;
  MNT_EXPIRE: number;
  UMOUNT_NOFOLLOW: number;
}

/**
 * Every call but pinNetns, pinIpcUts and atomicWriteFile is synchronous and throws a NativeError
 * on failure; those pass it to their callback.
 */
export interface BerthNative {
  /** mknod(2): `mode` includes the type (fs.constants.S_IFCHR/S_IFBLK/S_IFIFO); umask applies. */
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** undefined when the attribute is not set */
  lgetxattr(path: string, name: string): Buffer | undefined;
  llistxattr(path: string): string[];
  lremovexattr(path: string, name: string): void;
  /** syncfs(2) on the file system holding `path`. */
  syncfs(path: string): void;
  /** mount(2); the whole `data` string goes to the kernel in one page (4095 bytes max). */
  mount(
    source: string | null,
    target: string,
    fstype: string | null,
    flags: number,
    data: string | null,
  ): void;
  umount2(target: string, flags: number): void;
  mountConstants: MountConstants;
  /** glibc malloc_trim(0): free malloc memory of every arena back to the kernel; true if any went. */
  mallocTrim(): boolean;
  /**
   * Asynchronous (the only one): a new network namespace with `lo` up, bind-mounted onto `path`
   * (an existing file), made on a thread of its own; callback(err) when done. See native/src/netns.c.
   */
  pinNetns(path: string, callback: (err?: NativeError) => void): void;
  /**
   * New IPC and/or UTS namespaces (a null path: that one is not made), the UTS one with `hostname`
   * set, each pinned by a bind mount of its nsfs file on its path (an existing file); made on a
   * thread of its own; callback(err) when done. See native/src/netns.c.
   */
  pinIpcUts(
    ipcPath: string | null,
    utsPath: string | null,
    hostname: string | null,
    callback: (err?: NativeError) => void,
  ): void;
  /**
   * Asynchronous, one thread-pool job: `tmp` created (O_EXCL, `mode` less the umask), `data`
   * written and (when `durable`) fsynced, renamed over `target`, the directory fsynced (when
   * `durable`); `tmp` is removed when a step before the rename fails. See native/src/atomic-write.c.
   */
  atomicWriteFile(
    target: string,
    tmp: string,
    data: Buffer,
    mode: number,
    durable: boolean,
    callback: (err?: NativeError) => void,
  ): void;
}

const ADDON_REL = path.join('native', 'build', 'Release', 'berth_native.node');

/**
 * Where the addon is: $BERTH_NATIVE_ADDON if set, else the first `native/build/Release/...` found
 * walking up from this file (works from the source tree and from dist/).
 */
export function findNativeAddon(start = __dirname): string | undefined {
  const fromEnv = process.env.BERTH_NATIVE_ADDON;
  if (fromEnv) return fromEnv;
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, ADDON_REL);
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * A program the native build makes beside the addon (scripts/build-native.sh: berth-exec,
 * berth-crun-v1), or undefined when the addon itself is not found. Whether it was built is the
 * caller's to check.
 */
export function nativeProgramPath(name: string): string | undefined {
  const addon = findNativeAddon();
  return addon ? path.join(path.dirname(addon), name) : undefined;
}

let loaded: BerthNative | undefined;

/** The addon; throws a clear error when it has not been built. */
export function native(): BerthNative {
  if (loaded) return loaded;
  const file = findNativeAddon();
  if (!file) {
    throw new Error(`native addon ${ADDON_REL} not found above ${__dirname}: run \`npm run build:native\``);
  }
  const mod: { exports: unknown } = { exports: {} };
  process.dlopen(mod, file);
  loaded = mod.exports as BerthNative;
  return loaded;
}

/** True when the error is a NativeError (or a Node fs error) with the given code. */
export function hasErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as Partial<NativeError>).code === code;
}
