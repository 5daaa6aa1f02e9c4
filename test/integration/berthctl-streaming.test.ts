// berthctl's streaming commands end to end: the built CLI (dist/) against a real berthd, its
// streaming server, runc, conmon and nsenter+socat in a CNI pod.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as tty from 'node:tty';
import { execFileSync, spawn } from 'node:child_process';
import { call } from '../../api/client';
import type { PodSandboxConfig } from '../../api/generated';
import { startHarness, type Harness } from '../lab/harness';
import { BERTHCTL, berthctl } from '../lab/berthd';
import { openPty, setWinsize } from '../../internal/streaming/native-io';

jest.setTimeout(120_000);

let h: Harness;
let pod: PodSandboxConfig;
let podId: string;
let shell: string;
let web: string;

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthbs0', subnet: '10.245.0.0/24', prefix: 'bs' });
  pod = h.podConfig();
  podId = await h.runPod(pod);
  shell = await h.startCtr(podId, pod, h.ctrConfig('shell', ['sleep', '3600']));
  web = await h.startWebServer(podId, pod, 5_242_880);
});

afterAll(async () => {
  await h?.cleanup();
});

/** nsenter/socat processes berthd started (port-forward helpers), by parent pid. */
function helpersOfDaemon(): string[] {
  const daemon = h.d.proc.pid;
  const found: string[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
      if (m && Number(m[2]) === daemon && /^(nsenter|socat)$/.test(m[1])) found.push(`${p} ${m[1]}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function noHelpersLeft(): Promise<void> {
  let left: string[] = [];
  for (let i = 0; i < 50; i++) {
    left = helpersOfDaemon();
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(left).toEqual([]);
}

describe.each(['spdy', 'websocket'])('exec over %s', (transport) => {
  test('-i: 1 MB stdin round trip; exit code 3 becomes berthctl’s', async () => {
    const data = crypto.randomBytes(768 * 1024).toString('base64'); // 1 MiB of text
    const r = await berthctl(h.d, ['exec', '-i', '--transport', transport, shell, 'cat'], data);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(data.length);
    expect(r.stdout === data).toBe(true);
    const e = await berthctl(
      h.d,
      ['exec', '-i', '--transport', transport, shell, 'sh', '-c', 'cat; echo oops >&2; exit 3'],
      'in\n',
    );
    expect(e).toEqual({ code: 3, stdout: 'in\n', stderr: 'oops\n' });
  });

  test('-t without a local terminal: a remote terminal of 80x24, exit code kept', async () => {
    const r = await berthctl(h.d, [
      'exec',
      '-t',
      '--transport',
      transport,
      shell,
      'sh',
      '-c',
      'test -t 0 && test -t 1 && echo is-a-tty; stty size; exit 4',
    ]);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('is-a-tty\r\n24 80\r\n');
  });

  test('-it with piped stdin: the end of input is ^D on the remote terminal', async () => {
    // cat on a terminal ends only on ^D; the last line has no newline, so it takes two.
    const r = await berthctl(h.d, ['exec', '-it', '--transport', transport, shell, 'cat'], 'one\ntwo');
    expect(r.code).toBe(0);
    // the terminal echoes the input and cat prints it again (in whichever interleaving)
    expect(r.stdout.match(/one\r\n/g)).toHaveLength(2);
    expect(r.stdout.match(/two/g)).toHaveLength(2);
  });
});

async function until(cond: () => boolean, what: () => string): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!cond()) throw new Error(`timed out; so far: ${JSON.stringify(what())}`);
}

test('exec -it on a terminal: raw mode, its size, SIGWINCH resizes, ^C reaches the container', async () => {
  // berthctl's stdio is the slave of a pseudo-terminal we hold the master of, in cooked mode
  // (as a login terminal is): only raw mode lets ^C through as a byte instead of a signal.
  const { master, slave } = openPty(30, 100);
  execFileSync('stty', ['sane'], { stdio: [slave, 'ignore', 'ignore'] });
  const p = spawn(
    process.execPath,
    [
      BERTHCTL,
      '--endpoint',
      h.d.endpoint,
      'exec',
      '-it',
      shell,
      'sh',
      '-c',
      'trap "echo caught; exit 5" INT; stty size; read x; stty size; while true; do sleep 0.1; done',
    ],
    { stdio: [slave, slave, slave], detached: true },
  );
  const term = new tty.ReadStream(master);
  let out = '';
  term.on('data', (c: Buffer) => (out += c.toString()));
  term.on('error', () => undefined);
  try {
    await until(
      () => out.includes('30 100'),
      () => out,
    );
    setWinsize(master, 40, 120);
    process.kill(p.pid!, 'SIGWINCH');
    await new Promise((r) => setTimeout(r, 300));
    term.write('go\r');
    await until(
      () => out.includes('40 120'),
      () => out,
    );
    term.write('\x03');
    await until(
      () => p.exitCode !== null,
      () => out,
    );
    expect(p.exitCode).toBe(5);
    expect(out).toContain('caught');
    // berthctl put the terminal back as it found it
    const mode = execFileSync('stty', ['-a'], { stdio: [slave, 'pipe', 'ignore'] }).toString();
    expect(mode).toMatch(/ icanon /);
    expect(mode).toMatch(/ echo /);
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL');
    fs.closeSync(slave);
    term.destroy();
  }
});

test('exec -i into a container that does not exist fails clearly', async () => {
  const r = await berthctl(h.d, ['exec', '-i', 'nonexistent', 'cat'], 'x');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^berthctl exec: .*nonexistent/);
});

function get(port: number, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe.each(['spdy', 'websocket'])('port-forward over %s', (transport) => {
  test('serves the pod’s httpd on 127.0.0.1 until SIGINT, leaving no helper behind', async () => {
    const md5 = (await h.exec(web, ['md5sum', '/www/big'])).out.split(' ')[0];
    const p = spawn(
      process.execPath,
      [
        BERTHCTL,
        '--endpoint',
        h.d.endpoint,
        'port-forward',
        '--transport',
        transport,
        podId.slice(0, 13),
        ':8080',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    try {
      let local = 0;
      for (let i = 0; i < 100 && !local; i++) {
        const m = /^Forwarding from 127\.0\.0\.1:(\d+) -> 8080\n/.exec(stdout);
        if (m) local = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 50));
      }
      expect({ local: local > 0, stderr }).toEqual({ local: true, stderr: '' });
      const big = await get(local, '/big');
      expect(big.status).toBe(200);
      expect(big.body.length).toBe(5 * 1024 * 1024);
      expect(crypto.createHash('md5').update(big.body).digest('hex')).toBe(md5);
      const many = await Promise.all(Array.from({ length: 10 }, () => get(local, '/index.html')));
      expect(many.map((r) => r.body.toString())).toEqual(Array(10).fill('hello\n'));
      p.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
      await noHelpersLeft();
      // the port is closed with berthctl
      await expect(get(local, '/index.html')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      if (p.exitCode === null) p.kill('SIGKILL');
    }
  });
});

test('port-forward to a pod that does not exist fails before listening', async () => {
  const r = await berthctl(h.d, ['port-forward', 'f'.repeat(64), '18080:8080']);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^berthctl port-forward: /);
});

describe('attach', () => {
  test('reads the output of a container that prints', async () => {
    const id = await h.startCtr(
      podId,
      pod,
      h.ctrConfig('printer', [
        'sh',
        '-c',
        'sleep 2; for i in 1 2 3; do echo tick$i; echo tock$i >&2; sleep 0.2; done',
      ]),
    );
    const r = await berthctl(h.d, ['attach', id.slice(0, 13)]);
    expect(r).toEqual({ code: 0, stdout: 'tick1\ntick2\ntick3\n', stderr: 'tock1\ntock2\ntock3\n' });
  });

  test('-i over websocket: stdin reaches the container, its end closes stdin (stdin_once)', async () => {
    const id = await h.startCtr(
      podId,
      pod,
      h.ctrConfig('reader', ['sh', '-c', 'while read l; do echo "got $l"; done; echo end'], {
        stdin: true,
        stdin_once: true,
      }),
    );
    const r = await berthctl(h.d, ['attach', '-i', '--transport', 'websocket', id], 'one\ntwo\n');
    expect(r).toEqual({ code: 0, stdout: 'got one\ngot two\nend\n', stderr: '' });
    expect((await h.waitExited(id)).exit_code).toBe(0);
  });

  test('-t on a container without a tty is refused clearly', async () => {
    const r = await berthctl(h.d, ['attach', '-t', shell]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^berthctl attach: .*tty/);
    const st = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: shell });
    expect(st.status?.state).toBe('CONTAINER_RUNNING');
  });
});
