// Starts Debian's docker-registry (distribution 2.8) on 127.0.0.1 for a test, optionally behind
// htpasswd basic auth or token auth with our own token server. Everything lives in one temp dir.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { makeTokenSigner, startTokenServer, type TokenServer } from './token-server';

const execFileP = promisify(execFile);
const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface LabAuth {
  kind: 'basic' | 'token';
  username: string;
  password: string;
}

export interface LabRegistry {
  /** '127.0.0.1:PORT' */
  host: string;
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** the registry's filesystem storage root (so tests can corrupt blobs) */
  storageDir: string;
  auth?: LabAuth;
  /** token auth only: the realm URL, service and a counter of token requests */
  token?: { realm: string; service: string; issuer: string; requests(): number };
  /** PID of the registry process */
  pid: number;
  /** the registry's recent log output (stderr), for diagnosing failures */
  logs(): string;
  /** stops registry (and token server), removes temp dirs */
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  auth?: LabAuth;
}

const TOKEN_SERVICE = 'berth-lab-registry';
const TOKEN_ISSUER = 'berth-lab-issuer';
const LOG_LIMIT = 64 * 1024;

// Registries still running when the test process exits are killed and their dirs removed (sync),
// so a failed test that skipped stop() leaves nothing behind.
const live = new Map<number, { child: ChildProcess; dir: string }>();
let exitHookInstalled = false;
function track(child: ChildProcess, dir: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const { child: c, dir: d } of live.values()) {
        c.kill('SIGKILL');
        rmSync(d, { recursive: true, force: true });
      }
    });
  }
  if (child.pid !== undefined) live.set(child.pid, { child, dir });
}

const DIR_PREFIX = 'berth-lab-registry-';
const OWNER_FILE = 'owner.json';

/** Whether a process exists (EPERM: it exists but is not ours to signal). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes lab registries left by test processes that were killed (SIGKILL, timeouts) before they
 * could stop them: a dir whose owner process is gone is deleted, and its registry is killed only
 * if that PID still runs docker-registry with this dir's config (PIDs get reused).
 */
async function sweepStale(): Promise<void> {
  let names: string[];
  try {
    names = await readdir(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    let owner: { ownerPid: number; registryPid?: number };
    try {
      owner = JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as typeof owner;
    } catch {
      continue; // being set up right now, or not ours
    }
    if (pidAlive(owner.ownerPid)) continue;
    if (owner.registryPid !== undefined) {
      const cmdline = await readFile(`/proc/${owner.registryPid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.split('\0').includes(join(dir, 'config.yml'))) process.kill(owner.registryPid, 'SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  }
}
let swept: Promise<void> | undefined;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  if (child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, 'SIGTERM');
    if (!(await waitExit(child, 5000))) {
      process.kill(child.pid, 'SIGKILL');
      await waitExit(child, 5000);
    }
  }
  live.delete(child.pid);
}

interface Started {
  child: ChildProcess;
  logs: () => string;
}

/** Spawns the registry and waits until GET /v2/ answers (200 or 401); rejects if it exits first. */
async function spawnRegistry(configPath: string, url: string): Promise<Started> {
  const child = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(child, dirname(configPath));
  await writeFile(
    join(dirname(configPath), OWNER_FILE),
    JSON.stringify({ ownerPid: process.pid, registryPid: child.pid }),
  );
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    log = (log + d).slice(-LOG_LIMIT);
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  child.once('error', (err) => {
    exited = true;
    log += `\nspawn ${REGISTRY_BIN}: ${err.message}`;
  });
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return { child, logs: () => log };
    } catch {
      // not listening yet
    }
    await sleep(30);
  }
  await stopChild(child);
  throw new Error(`docker-registry did not come up at ${url}: ${log.slice(-2000)}`);
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<LabRegistry> {
  swept ??= sweepStale();
  await swept;
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  await writeFile(join(dir, OWNER_FILE), JSON.stringify({ ownerPid: process.pid }));
  let tokenServer: TokenServer | undefined;
  try {
    const storageDir = join(dir, 'storage');
    await mkdir(storageDir);
    const auth = opts.auth;

    let authConfig: Record<string, unknown> | undefined;
    if (auth?.kind === 'basic') {
      const { stdout } = await execFileP('htpasswd', ['-Bbn', auth.username, auth.password]);
      const htpasswdPath = join(dir, 'htpasswd');
      await writeFile(htpasswdPath, stdout.trim() + '\n', { mode: 0o600 });
      authConfig = { htpasswd: { realm: 'berth-lab', path: htpasswdPath } };
    } else if (auth?.kind === 'token') {
      const signer = await makeTokenSigner(dir);
      tokenServer = await startTokenServer({
        signer,
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
        username: auth.username,
        password: auth.password,
      });
      authConfig = {
        token: {
          realm: tokenServer.realm,
          service: TOKEN_SERVICE,
          issuer: TOKEN_ISSUER,
          rootcertbundle: signer.certPath,
        },
      };
    }

    // A port picked here may be taken before the registry binds it; retry a few times.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      const url = `http://${host}`;
      // YAML is a superset of JSON, so the config is written as JSON.
      const config = {
        version: 0.1,
        log: { level: 'warn', accesslog: { disabled: true } },
        storage: {
          filesystem: { rootdirectory: storageDir },
          delete: { enabled: true },
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: { addr: host, secret: randomBytes(16).toString('hex') },
        ...(authConfig ? { auth: authConfig } : {}),
      };
      const configPath = join(dir, 'config.yml');
      await writeFile(configPath, JSON.stringify(config, null, 2));
      let started: Started;
      try {
        started = await spawnRegistry(configPath, url);
      } catch (err) {
        if (attempt < 3 && /address already in use/.test(String(err))) continue;
        throw err;
      }
      const { child, logs } = started;
      const ts = tokenServer;
      let stopped: Promise<void> | undefined;
      return {
        host,
        url,
        storageDir,
        auth,
        token: ts
          ? { realm: ts.realm, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, requests: ts.requests }
          : undefined,
        pid: child.pid as number,
        logs,
        stop: () => {
          stopped ??= (async () => {
            await stopChild(child);
            await ts?.close();
            await rm(dir, { recursive: true, force: true });
          })();
          return stopped;
        },
      };
    }
  } catch (err) {
    await tokenServer?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
