// Starts a real berthd (the built dist/cmd/berthd/main.js) in temp dirs for integration tests,
// with a typed CRI client. kill9() and restart() exercise crash recovery.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, call, type CriClients } from '../../api/client';
import { mountsUnder, unmount } from '../../internal/util/mount';

/** The checkout's root, whether this file runs from source (ts-jest) or from dist/ (benchmarks). */
export const REPO_ROOT = ((): string => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
export const BERTHD = path.join(REPO_ROOT, 'dist', 'cmd', 'berthd', 'main.js');
export const BERTHCTL = path.join(REPO_ROOT, 'dist', 'cmd', 'berthctl', 'main.js');

export interface TestDaemon {
  dir: string;
  socket: string;
  root: string;
  state: string;
  configPath: string;
  endpoint: string;
  clients: CriClients;
  proc: ChildProcess;
  /** everything berthd wrote to stdout/stderr so far */
  output(): string;
  /** SIGTERM and wait for exit */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit */
  kill9(): Promise<void>;
  /** start again over the same dirs (after stop or kill9), optionally with other extra env */
  restart(env?: Record<string, string>): Promise<void>;
  /** start again without waiting for it to answer (for crash-point runs that die on a request) */
  relaunch(env?: Record<string, string>): Promise<void>;
  /** resolves when the current process exits */
  exited(): Promise<number | null>;
  /**
   * Resolves once no removed pod or container is still being cleaned up (RemovePodSandbox and
   * RemoveContainer answer first and clean up in the background): no `*.json.removing` record is
   * left. Rejects after `ms`.
   */
  settled(ms?: number): Promise<void>;
  /** stop if running and remove the temp dirs */
  cleanup(): Promise<void>;
}

export function assertBuilt(): void {
  if (!fs.existsSync(BERTHD)) throw new Error(`${BERTHD} is missing: run "npm run build" first`);
}

/** The node flags on berthd's `#!/usr/bin/env -S node <flags>` line. */
export function berthdNodeFlags(file = BERTHD): string[] {
  const first = fs.readFileSync(file, 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env -S node(?: (.*))?$/.exec(first);
  return m?.[1] ? m[1].split(' ').filter(Boolean) : [];
}

function waitExit(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
}

async function waitReady(d: { clients: CriClients; proc: ChildProcess; output(): string }): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (d.proc.exitCode !== null) throw new Error(`berthd exited with ${d.proc.exitCode}:\n${d.output()}`);
    try {
      await call(d.clients.runtime, 'Version', { version: 'v1' }, 1000);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`berthd did not answer within 30 s:\n${d.output()}`);
}

export { waitReady };

export async function startBerthd(
  config: Record<string, unknown> = {},
  opts: { env?: Record<string, string> } = {},
): Promise<TestDaemon> {
  assertBuilt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-it-'));
  const root = path.join(dir, 'root');
  // short: conmon's attach socket path lives under it and must fit a unix socket address
  const state = fs.mkdtempSync('/run/bt-');
  const socket = path.join(state, 'berth.sock');
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify({ log_level: 'debug', ...config }, null, 2));
  let out = '';
  let env = opts.env ?? {};
  const launch = (): ChildProcess => {
    // BERTHD_NODE_ARGS: extra node flags, e.g. `--cpu-prof --cpu-prof-dir=DIR` for a profile of a
    // benchmark's daemon (node refuses --cpu-prof in NODE_OPTIONS).
    // berthd's own node flags (its #! line) come first, as when it runs as a command.
    const nodeArgs = [
      ...berthdNodeFlags(),
      ...(process.env.BERTHD_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ];
    // BERTHD_WRAPPER: a command line to run node under, e.g. `heaptrack -o FILE` (the daemon's
    // pid is then the wrapper's).
    const wrapper = (process.env.BERTHD_WRAPPER ?? '').split(' ').filter(Boolean);
    const argv = [
      process.execPath,
      ...nodeArgs,
      BERTHD,
      '--config',
      configPath,
      '--root',
      root,
      '--state',
      state,
    ];
    const p = spawn(
      wrapper[0] ?? argv[0],
      [...wrapper.slice(1), ...(wrapper.length ? argv : argv.slice(1))],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      },
    );
    p.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    return p;
  };
  let clients: CriClients;
  try {
    clients = connect(`unix://${socket}`);
  } catch (err) {
    // nothing started yet: only the dirs to remove
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(state, { recursive: true, force: true });
    throw err;
  }
  const d: TestDaemon = {
    dir,
    socket,
    root,
    state,
    configPath,
    endpoint: `unix://${socket}`,
    clients,
    proc: launch(),
    output: () => out,
    async stop() {
      d.proc.kill('SIGTERM');
      return waitExit(d.proc);
    },
    async kill9() {
      d.proc.kill('SIGKILL');
      await waitExit(d.proc);
    },
    async restart(newEnv?: Record<string, string>) {
      await d.relaunch(newEnv);
      await waitReady(d);
    },
    async relaunch(newEnv?: Record<string, string>) {
      if (d.proc.exitCode === null && d.proc.signalCode === null) await d.stop();
      if (newEnv) env = newEnv;
      d.clients.close();
      d.clients = connect(`unix://${socket}`);
      d.proc = launch();
    },
    exited: () => waitExit(d.proc),
    async settled(ms = 30_000) {
      const marked = (): string[] =>
        ['sandboxes', 'containers'].flatMap((sub) => {
          const dirPath = path.join(root, sub);
          return fs.existsSync(dirPath)
            ? fs.readdirSync(dirPath).filter((f) => f.endsWith('.json.removing'))
            : [];
        });
      const deadline = Date.now() + ms;
      for (let left = marked(); left.length; left = marked()) {
        if (Date.now() > deadline) throw new Error(`removals still being cleaned up: ${left.join(', ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async cleanup() {
      if (d.proc.exitCode === null && d.proc.signalCode === null) await d.stop();
      d.clients.close();
      // what this daemon mounted (the netns dir's self-bind, leftovers of a failed test) goes first
      for (const m of [...(await mountsUnder(state)), ...(await mountsUnder(dir))]) await unmount(m);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(state, { recursive: true, force: true });
    },
  };
  try {
    await waitReady(d);
  } catch (err) {
    await d.cleanup();
    throw err;
  }
  return d;
}

/** Runs the built berthctl against a daemon and returns its exit code and output. */
export function berthctl(
  d: { endpoint: string },
  args: string[],
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BERTHCTL, '--endpoint', d.endpoint, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.stdin.end(input ?? '');
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
