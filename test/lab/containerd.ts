// Debian's containerd (1.6.20, `apt-get install containerd`) as an anchor for benchmarks: the same
// CRI load run against Berth and against containerd on the same machine in the same session.
// startContainerd() installs nothing: it checks /usr/bin/containerd, writes a version 2 config that
// keeps everything containerd makes in the anchor's own dirs, starts it by pid and waits until CRI
// answers. stop() removes every pod, stops containerd and whatever it left (shims, containers,
// mounts under its dirs, shim sockets) and removes its dirs and CNI network.
//
// Dirs: /run/berth-anchor-XXXX holds the socket (containerd.sock, .ttrpc beside it) and the state
// dir (`state/`: task bundles, netns pins, sandbox shm, runc's root); the root dir
// (`<tmp>/berth-anchor-XXXX/root`: content, overlayfs snapshots, metadata) is on disk beside the
// config and containerd's log (`containerd.log`).
//
// Config pitfalls handled here (1.6 defaults that would write outside the anchor's dirs or fail on
// this VM): the network namespaces go under the state dir (`netns_mounts_under_state_dir`; the
// default is /var/run/netns), runc's root is set in the runc options (default /run/containerd/runc),
// the opt plugin's path is moved under root (default /opt/containerd), no systemd cgroups
// (`SystemdCgroup = false`: PID 1 is not systemd here), `restrict_oom_score_adj = true` (root here
// lacks CAP_SYS_RESOURCE, so lowering a container's oom_score_adj below containerd's own fails),
// and the lab registry as a plain-http mirror of itself. One thing containerd 1.6 hardcodes: the
// shims' sockets live in /run/containerd/s/<sha256(address/namespace/id)>; a shim removes its own
// socket when it exits normally, stop() removes those of shims it had to kill, and removes
// /run/containerd/s and /run/containerd when this anchor created them and they are empty. Pods
// without a cgroup_parent get the cgroup /k8s.io/<id>; runc removes the leaf but not /k8s.io,
// which stop() removes when it was not there before (pods of the load benchmark have parents).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { call, connect, type CriClients } from '../../api/client';
import { mountsUnder, unmount } from '../../internal/util/mount';
import { makeLabNetwork, type LabNetwork } from './cni';
import { pidAlive } from './registry';

const execFileP = promisify(execFile);

export const CONTAINERD_BIN = '/usr/bin/containerd';
const RUNC_BIN = '/usr/sbin/runc';
const PREFIX = 'berth-anchor-';
const OWNER_FILE = 'owner.json';
/** containerd 1.6's hardcoded shim socket dir (defaults.DefaultStateDir + "/s") */
const SHIM_SOCKET_ROOT = '/run/containerd';
/** the CRI plugin's containerd namespace */
export const CRI_NAMESPACE = 'k8s.io';

export interface ContainerdOptions {
  /** the pod sandbox (pause) image, e.g. `${reg.host}/pause:3.10` */
  sandboxImage: string;
  /** registries to reach over plain http (e.g. the lab registry's `127.0.0.1:PORT`) */
  insecureRegistries?: string[];
  /** the anchor's own CNI bridge and subnet (not the ones Berth uses in the same run) */
  bridge?: string;
  subnet?: string;
  /** containerd's log level (default warn) */
  logLevel?: string;
}

export interface Containerd {
  /** /run/berth-anchor-XXXX: socket and state */
  runDir: string;
  /** <tmp>/berth-anchor-XXXX: config, log and root */
  dir: string;
  root: string;
  state: string;
  socket: string;
  /** unix:///run/berth-anchor-XXXX/containerd.sock */
  endpoint: string;
  configPath: string;
  logPath: string;
  pid: number;
  proc: ChildProcess;
  clients: CriClients;
  netw: LabNetwork;
  /** the last `bytes` of containerd's log */
  logs(bytes?: number): string;
  /** pids of the containerd-shim-runc-v2 processes serving this containerd (by -address in their cmdline) */
  shimPids(): number[];
  /** removes every pod, stops containerd and its shims, unmounts, removes dirs and network */
  stop(): Promise<void>;
}

interface Paths {
  runDir: string;
  dir: string;
  root: string;
  state: string;
  socket: string;
  configPath: string;
  logPath: string;
  runcRoot: string;
}

function pathsFor(runDir: string, dir: string): Paths {
  const state = path.join(runDir, 'state');
  return {
    runDir,
    dir,
    root: path.join(dir, 'root'),
    state,
    socket: path.join(runDir, 'containerd.sock'),
    configPath: path.join(dir, 'config.toml'),
    logPath: path.join(dir, 'containerd.log'),
    runcRoot: path.join(state, 'runc'),
  };
}

const q = (s: string): string => JSON.stringify(s); // TOML basic strings accept JSON's escapes

function configToml(p: Paths, opts: ContainerdOptions, cniConfDir: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const mirrors = (opts.insecureRegistries ?? [])
    .map((h) => `[${cri}.registry.mirrors.${q(h)}]\n  endpoint = [${q(`http://${h}`)}]\n`)
    .join('');
  return `# written by test/lab/containerd.ts (Berth benchmark anchor)
version = 2
root = ${q(p.root)}
state = ${q(p.state)}
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = ${q(p.socket)}

[debug]
  level = ${q(opts.logLevel ?? 'warn')}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(path.join(p.root, 'opt'))}

[${cri}]
  sandbox_image = ${q(opts.sandboxImage)}
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = ${q(RUNC_BIN)}
  Root = ${q(p.runcRoot)}

[${cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = ${q(cniConfDir)}
  max_conf_num = 1

${mirrors}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function cmdlineOf(pid: number | string): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

interface Shim {
  pid: number;
  namespace: string;
  id: string;
}

/** containerd-shim-* processes whose `-address` is `socket`. */
function findShims(socket: string): Shim[] {
  const out: Shim[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const argv = cmdlineOf(e);
    if (argv.length === 0 || !path.basename(argv[0]).startsWith('containerd-shim')) continue;
    const arg = (name: string): string => {
      const i = argv.indexOf(name);
      return i >= 0 && i + 1 < argv.length ? argv[i + 1] : '';
    };
    if (arg('-address') !== socket) continue;
    out.push({ pid: Number(e), namespace: arg('-namespace'), id: arg('-id') });
  }
  return out;
}

/** pids of the containerd-shim-* processes serving the containerd listening on `socket`. */
export function shimPidsFor(socket: string): number[] {
  return findShims(socket).map((s) => s.pid);
}

/** Where containerd 1.6 puts a shim's socket: /run/containerd/s/<sha256(address/ns/id)>. */
function shimSocketPath(socket: string, ns: string, id: string): string {
  const d = createHash('sha256')
    .update(path.join(socket, ns, id))
    .digest('hex');
  return path.join(SHIM_SOCKET_ROOT, 's', d);
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(50);
  }
  return !pidAlive(pid);
}

async function killPid(pid: number, graceMs: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitGone(pid, graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitGone(pid, 5000);
}

/**
 * Everything after the pods are gone: containerd (by pid, only if its cmdline names this config),
 * containers runc still knows under the anchor's runc root, the shims of this address, their
 * sockets, mounts under the anchor's dirs, and the dirs. Also used for anchors whose owner died.
 */
async function teardown(
  p: Paths,
  containerdPid: number | undefined,
  createdRunContainerd: boolean,
): Promise<void> {
  if (containerdPid !== undefined && cmdlineOf(containerdPid).includes(p.configPath)) {
    await killPid(containerdPid, 10_000);
  }
  // containers the pods' removal did not take (a failed run): runc kill + delete
  for (const nsDir of fs.existsSync(p.runcRoot) ? fs.readdirSync(p.runcRoot) : []) {
    const runcRoot = path.join(p.runcRoot, nsDir);
    let ids: string[] = [];
    try {
      const { stdout } = await execFileP(RUNC_BIN, ['--root', runcRoot, 'list', '-q']);
      ids = stdout.split('\n').filter(Boolean);
    } catch {
      // not a runc root
    }
    for (const id of ids) {
      await execFileP(RUNC_BIN, ['--root', runcRoot, 'delete', '--force', id]).catch(() => undefined);
    }
  }
  const shims = findShims(p.socket);
  for (const s of shims) await killPid(s.pid, 2000);
  for (const s of shims) fs.rmSync(shimSocketPath(p.socket, s.namespace, s.id), { force: true });
  for (const dir of [p.runDir, p.dir]) {
    for (const m of await mountsUnder(dir)) await unmount(m);
  }
  fs.rmSync(p.runDir, { recursive: true, force: true });
  fs.rmSync(p.dir, { recursive: true, force: true });
  if (createdRunContainerd) {
    for (const d of [path.join(SHIM_SOCKET_ROOT, 's'), SHIM_SOCKET_ROOT]) {
      try {
        fs.rmdirSync(d); // only when empty: never someone else's
      } catch {
        // not empty, or not there
      }
    }
  }
}

/** Mount points of the cgroup (v1 and v2) hierarchies. */
function cgroupMounts(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [pre, post] = l.split(' - ');
      return { mp: pre.split(' ')[4], fstype: (post ?? '').split(' ')[0] };
    })
    .filter((m) => m.fstype === 'cgroup' || m.fstype === 'cgroup2')
    .map((m) => m.mp);
}

/** Whether `rel` (e.g. /k8s.io) exists as a cgroup in any hierarchy. */
function cgroupExists(rel: string): boolean {
  return cgroupMounts().some((mp) => fs.existsSync(path.join(mp, rel)));
}

/**
 * Removes the cgroup `rel` (children first) from every hierarchy. rmdir only succeeds on cgroups
 * without processes, so a live one stays; returns what could not be removed.
 */
export function removeCgroupTree(rel: string): string[] {
  const failed: string[] = [];
  const rmTree = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) rmTree(path.join(dir, e.name));
    try {
      fs.rmdirSync(dir);
    } catch (err) {
      failed.push(`could not remove cgroup ${dir}: ${(err as Error).message}`);
    }
  };
  for (const mp of cgroupMounts()) {
    const dir = path.join(mp, rel);
    if (fs.existsSync(dir)) rmTree(dir);
  }
  return failed;
}

/** Anchors left by a process that died before stop(): torn down at the next start in any process. */
async function sweepStale(): Promise<void> {
  for (const name of fs.readdirSync('/run')) {
    if (!name.startsWith(PREFIX)) continue;
    const runDir = path.join('/run', name);
    let owner: {
      ownerPid: number;
      dir: string;
      containerdPid?: number;
      createdRunContainerd?: boolean;
      bridge?: string;
      cniDir?: string;
    };
    try {
      owner = JSON.parse(fs.readFileSync(path.join(runDir, OWNER_FILE), 'utf8')) as typeof owner;
    } catch {
      continue;
    }
    if (pidAlive(owner.ownerPid) || !path.basename(owner.dir).startsWith(PREFIX)) continue;
    await teardown(pathsFor(runDir, owner.dir), owner.containerdPid, owner.createdRunContainerd ?? false);
    if (owner.bridge) await execFileP('ip', ['link', 'del', owner.bridge]).catch(() => undefined);
    if (owner.cniDir && path.basename(owner.cniDir).startsWith('berth-cni-')) {
      fs.rmSync(owner.cniDir, { recursive: true, force: true });
    }
  }
}

async function waitReady(clients: CriClients, proc: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`containerd exited (${proc.exitCode ?? proc.signalCode}):\n${logs()}`);
    }
    try {
      await call(clients.runtime, 'Version', { version: 'v1' }, 1000);
      // the CNI config is loaded asynchronously; pods before it fail with "cni config uninitialized"
      const st = await call(clients.runtime, 'Status', { verbose: false }, 1000);
      const net = st.status?.conditions.find((c) => c.type === 'NetworkReady');
      if (net?.status) return;
      last = `NetworkReady false: ${net?.reason ?? ''} ${net?.message ?? ''}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(100);
  }
  throw new Error(`containerd did not answer CRI within 60 s (${last}):\n${logs()}`);
}

export async function startContainerd(opts: ContainerdOptions): Promise<Containerd> {
  if (!fs.existsSync(CONTAINERD_BIN)) {
    throw new Error(
      `${CONTAINERD_BIN} is missing: the containerd anchor needs Debian's containerd (apt-get install containerd)`,
    );
  }
  await sweepStale();
  const createdRunContainerd = !fs.existsSync(SHIM_SOCKET_ROOT);
  // pods without a cgroup_parent get /k8s.io/<id> from containerd; runc leaves /k8s.io behind
  const hadCriCgroup = cgroupExists(`/${CRI_NAMESPACE}`);
  const runDir = fs.mkdtempSync(path.join('/run', PREFIX));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), PREFIX));
  const p = pathsFor(runDir, dir);
  const ownerPath = path.join(runDir, OWNER_FILE);
  let netw: LabNetwork | undefined;
  const writeOwner = (containerdPid?: number): void =>
    fs.writeFileSync(
      ownerPath,
      JSON.stringify({
        ownerPid: process.pid,
        dir,
        containerdPid,
        createdRunContainerd,
        bridge: netw?.bridge,
        cniDir: netw ? path.dirname(netw.confDir) : undefined,
      }),
    );
  writeOwner();
  let proc: ChildProcess | undefined;
  let clients: CriClients | undefined;
  try {
    fs.mkdirSync(p.root);
    fs.mkdirSync(p.state);
    netw = makeLabNetwork(opts.bridge ?? 'berthanc0', opts.subnet ?? '10.247.0.0/24');
    writeOwner();
    fs.writeFileSync(p.configPath, configToml(p, opts, netw.confDir));
    const logFd = fs.openSync(p.logPath, 'a');
    try {
      proc = spawn(CONTAINERD_BIN, ['--config', p.configPath], {
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
      });
    } finally {
      fs.closeSync(logFd);
    }
    const child = proc;
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    writeOwner(child.pid);
    const logs = (bytes = 4000): string => {
      try {
        const s = fs.readFileSync(p.logPath, 'utf8');
        return s.slice(-bytes);
      } catch {
        return '';
      }
    };
    clients = connect(`unix://${p.socket}`);
    await waitReady(clients, child, logs);
    const network = netw;
    const cri = clients;
    let stopped: Promise<void> | undefined;
    return {
      ...p,
      endpoint: `unix://${p.socket}`,
      pid: child.pid as number,
      proc: child,
      clients: cri,
      netw: network,
      logs,
      shimPids: () => shimPidsFor(p.socket),
      stop() {
        stopped ??= (async () => {
          try {
            const pods = await call(cri.runtime, 'ListPodSandbox', {}, 10_000).catch(() => ({ items: [] }));
            for (const pod of pods.items) {
              await call(cri.runtime, 'StopPodSandbox', { pod_sandbox_id: pod.id }, 60_000).catch(
                () => undefined,
              );
              await call(cri.runtime, 'RemovePodSandbox', { pod_sandbox_id: pod.id }, 60_000).catch(
                () => undefined,
              );
            }
          } finally {
            cri.close();
            await teardown(p, child.pid, createdRunContainerd);
            network.cleanup();
            if (!hadCriCgroup) removeCgroupTree(`/${CRI_NAMESPACE}`);
          }
        })();
        return stopped;
      },
    };
  } catch (err) {
    clients?.close();
    await teardown(p, proc?.pid, createdRunContainerd).catch(() => undefined);
    netw?.cleanup();
    throw err;
  }
}
