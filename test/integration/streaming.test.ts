// Exec, Attach and PortForward end to end: berthd's streaming server with real runc, conmon,
// nsenter+socat and a CNI pod, driven through the same client code berthctl uses, over SPDY/3.1
// and WebSocket.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PassThrough, Readable, Writable, type Duplex } from 'node:stream';
import { call } from '../../api/client';
import type { PodSandboxConfig } from '../../api/generated';
import { startHarness, type Harness } from '../lab/harness';
import {
  portForwardSpdy,
  portForwardWs,
  spdyUpgrade,
  streamExec,
  UpgradeError,
  type ExecClientOptions,
  type Transport,
} from '../../internal/streaming/client';
import { EXEC_SPDY_PROTOCOLS, HEADER_STREAM_TYPE } from '../../internal/streaming/channel';

jest.setTimeout(120_000);

let h: Harness;
let pod: PodSandboxConfig;
let podId: string;
let shell: string; // sleeping container for exec
let web: string; // httpd container

const TRANSPORTS: Transport[] = ['spdy', 'websocket'];

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthst0', subnet: '10.253.0.0/24', prefix: 'st' });
  pod = h.podConfig();
  podId = await h.runPod(pod);
  shell = await h.startCtr(podId, pod, h.ctrConfig('shell', ['sleep', '3600']));
  web = await h.startWebServer(podId, pod, 10_485_760);
});

afterAll(async () => {
  if (process.env.BERTH_ST_DEBUG && h)
    fs.writeFileSync(path.join(os.tmpdir(), 'berth-st-daemon.log'), h.d.output());
  await h?.cleanup();
});

class Sink extends Writable {
  chunks: Buffer[] = [];
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(c);
    cb();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }
  get buf(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

async function execUrl(
  id: string,
  cmd: string[],
  o: { tty?: boolean; stdin?: boolean } = {},
): Promise<string> {
  const r = await call(h.d.clients.runtime, 'Exec', {
    container_id: id,
    cmd,
    tty: o.tty ?? false,
    stdin: o.stdin ?? false,
    stdout: true,
    stderr: !o.tty,
  });
  return r.url;
}

async function run(
  transport: Transport,
  id: string,
  cmd: string[],
  o: Partial<ExecClientOptions> & { input?: Buffer } = {},
): Promise<{ code: number; out: Sink; err: Sink }> {
  const url = await execUrl(id, cmd, { tty: o.tty, stdin: o.input !== undefined || o.stdin !== undefined });
  const out = new Sink();
  const err = new Sink();
  const stdin = o.input !== undefined ? Readable.from([o.input]) : o.stdin;
  const res = await streamExec(url, { ...o, transport, stdin, stdout: out, stderr: o.tty ? undefined : err });
  return { code: res.exitCode, out, err };
}

function leftovers(): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps
    .split('\n')
    .filter((l) => /runc .*exec --process|socat .*TCP4:127\.0\.0\.1|nsenter --net=/.test(l))
    .filter((l) => l.includes(h.d.state) || /socat|nsenter/.test(l));
}

async function noLeftovers(): Promise<void> {
  let left: string[] = [];
  for (let i = 0; i < 50; i++) {
    left = leftovers();
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(left).toEqual([]);
}

describe.each(TRANSPORTS)('exec over %s', (transport) => {
  test('echo, exit codes 0 and 3, stderr separated', async () => {
    const a = await run(transport, shell, ['sh', '-c', 'echo hello; echo oops >&2']);
    expect(a.code).toBe(0);
    expect(a.out.text).toBe('hello\n');
    expect(a.err.text).toBe('oops\n');
    const b = await run(transport, shell, ['sh', '-c', 'echo bye; exit 3']);
    expect(b.code).toBe(3);
    expect(b.out.text).toBe('bye\n');
  });

  test('10 MB stdin round trip, EOF on stdin close', async () => {
    const data = crypto.randomBytes(10 * 1024 * 1024);
    const r = await run(transport, shell, ['cat'], { input: data });
    expect(r.code).toBe(0);
    expect(r.out.buf.length).toBe(data.length);
    expect(r.out.buf.equals(data)).toBe(true);
  });

  test('tty: a terminal with the size from the resize stream', async () => {
    const stdin = new PassThrough();
    let send: ((s: { width: number; height: number }) => void) | undefined;
    const url = await execUrl(
      shell,
      ['sh', '-c', 'stty size; read x; stty size; test -t 0 && echo is-a-tty'],
      {
        tty: true,
        stdin: true,
      },
    );
    const out = new Sink();
    const done = streamExec(url, {
      transport,
      tty: true,
      stdin,
      stdout: out,
      initialSize: { width: 100, height: 30 },
      onResize: (s) => (send = s),
    });
    for (let i = 0; i < 100 && !out.text.includes('30 100'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out.text).toContain('30 100');
    send!({ width: 120, height: 40 });
    await new Promise((r) => setTimeout(r, 300));
    stdin.write('go\r');
    const res = await done;
    expect(res.exitCode).toBe(0);
    expect(out.text).toContain('40 120');
    expect(out.text).toContain('is-a-tty');
  });

  test('tty exit code', async () => {
    const r = await run(transport, shell, ['sh', '-c', 'exit 3'], { tty: true });
    expect(r.code).toBe(3);
  });
});

test('exec validation: empty cmd, no streams, stopped container', async () => {
  await expect(
    call(h.d.clients.runtime, 'Exec', { container_id: shell, cmd: [], stdout: true }),
  ).rejects.toMatchObject({ code: 3 });
  await expect(
    call(h.d.clients.runtime, 'Exec', { container_id: shell, cmd: ['true'] }),
  ).rejects.toMatchObject({
    code: 3,
  });
  await expect(
    call(h.d.clients.runtime, 'Exec', { container_id: 'nonexistent', cmd: ['true'], stdout: true }),
  ).rejects.toMatchObject({ code: 5 });
});

test('URLs are absolute; a token works once, unknown tokens are 404', async () => {
  const url = await execUrl(shell, ['true']);
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{40,}$/);
  expect((await streamExec(url, { stdout: new Sink(), stderr: new Sink() })).exitCode).toBe(0);
  await expect(streamExec(url, { stdout: new Sink(), stderr: new Sink() })).rejects.toMatchObject({
    statusCode: 404,
  });
  const bogus = url.replace(/\/exec\/.*/, '/exec/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
  await expect(streamExec(bogus, { stdout: new Sink(), transport: 'websocket' })).rejects.toMatchObject({
    statusCode: 404,
  });
  const root = new URL(url);
  const status = await new Promise<number>((resolve) =>
    http.get(`http://${root.host}/`, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }),
  );
  expect(status).toBe(404);
});

describe.each(TRANSPORTS)('attach over %s', (transport) => {
  test('to a container that prints and reads', async () => {
    const id = await h.startCtr(
      podId,
      pod,
      h.ctrConfig(
        `att-${transport}`,
        ['sh', '-c', 'echo started; while read l; do echo "got $l"; echo "err $l" >&2; done; echo end'],
        {
          stdin: true,
          stdin_once: true,
        },
      ),
    );
    // attach only once 'started' is in the log, so the check below that it is not replayed holds
    // even when the shell starts slowly on a busy machine
    const log = path.join(pod.log_directory ?? '', `att-${transport}`, '0.log');
    for (
      let i = 0;
      i < 200 && !(await fs.promises.readFile(log, 'utf8').catch(() => '')).includes('started');
      i++
    )
      await new Promise((r) => setTimeout(r, 25));
    const { url } = await call(h.d.clients.runtime, 'Attach', {
      container_id: id,
      stdin: true,
      stdout: true,
      stderr: true,
      tty: false,
    });
    const stdin = new PassThrough();
    const out = new Sink();
    const err = new Sink();
    const done = streamExec(url, { transport, stdin, stdout: out, stderr: err });
    await new Promise((r) => setTimeout(r, 300));
    stdin.write('one\n');
    for (let i = 0; i < 100 && !out.text.includes('got one'); i++)
      await new Promise((r) => setTimeout(r, 50));
    stdin.end('two\n');
    const res = await done;
    expect(res.exitCode).toBe(0);
    // what was logged before the attach is not replayed
    expect(out.text).not.toContain('started');
    expect(out.text).toBe('got one\ngot two\nend\n');
    expect(err.text).toBe('err one\nerr two\n');
    expect((await h.waitExited(id)).exit_code).toBe(0);
  });
});

test('two clients attached at once both see the output', async () => {
  const id = await h.startCtr(
    podId,
    pod,
    h.ctrConfig('att-multi', ['sh', '-c', 'sleep 1; for i in 1 2 3; do echo tick$i; sleep 0.2; done']),
  );
  const sinks = [new Sink(), new Sink()];
  const runs = await Promise.all(
    sinks.map(async (s, i) => {
      const { url } = await call(h.d.clients.runtime, 'Attach', { container_id: id, stdout: true });
      return streamExec(url, { transport: TRANSPORTS[i], stdout: s });
    }),
  );
  expect(runs.map((r) => r.exitCode)).toEqual([0, 0]);
  for (const s of sinks) expect(s.text).toContain('tick3');
});

function httpGet(conn: Duplex, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    conn.on('data', (c: Buffer) => chunks.push(c));
    conn.on('end', () => resolve(Buffer.concat(chunks)));
    conn.on('error', reject);
    conn.write(`GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`);
  });
}

function body(resp: Buffer): Buffer {
  const i = resp.indexOf('\r\n\r\n');
  return resp.subarray(i + 4);
}

describe.each(TRANSPORTS)('port-forward over %s', (transport) => {
  test('10 MB response intact; 20 parallel connections; a refused port errs alone', async () => {
    const expected = Buffer.from(
      (
        await call(h.d.clients.runtime, 'ExecSync', {
          container_id: web,
          cmd: ['md5sum', '/www/big'],
          timeout: 10,
        })
      ).stdout,
    )
      .toString()
      .split(' ')[0];
    const { url } = await call(h.d.clients.runtime, 'PortForward', { pod_sandbox_id: podId, port: [8080] });
    const pf =
      transport === 'spdy'
        ? await portForwardSpdy(url)
        : portForwardWs(
            async () =>
              (await call(h.d.clients.runtime, 'PortForward', { pod_sandbox_id: podId, port: [] })).url,
          );
    try {
      const resp = await httpGet(await pf.connect(8080), '/big');
      expect(resp.subarray(0, 13).toString()).toMatch(/^HTTP\/1\.[01] 200 /);
      const big = body(resp);
      expect(big.length).toBe(10 * 1024 * 1024);
      expect(crypto.createHash('md5').update(big).digest('hex')).toBe(expected);
      // a failing connection next to working ones
      const bad = pf
        .connect(8081)
        .then((c) => httpGet(c, '/'))
        .then(
          () => 'no error',
          (e: Error) => e.message,
        );
      const replies = await Promise.all(
        Array.from({ length: 20 }, async () => body(await httpGet(await pf.connect(8080), '/index.html'))),
      );
      for (const r of replies) expect(r.toString()).toBe('hello\n');
      expect(await bad).toMatch(/error forwarding port 8081.*refused/i);
    } finally {
      pf.close();
    }
    await noLeftovers();
  });
});

test('a client that cuts the connection mid-stream leaves nothing behind', async () => {
  // exec: a long-running command, connection destroyed while it runs
  const url = await execUrl(shell, ['sh', '-c', 'while true; do echo x; sleep 0.05; done']);
  const { conn } = await spdyUpgrade(url, EXEC_SPDY_PROTOCOLS);
  conn.openStream({ [HEADER_STREAM_TYPE]: 'error' }, { fin: true }).resume();
  const out = conn.openStream({ [HEADER_STREAM_TYPE]: 'stdout' }, { fin: true });
  conn.openStream({ [HEADER_STREAM_TYPE]: 'stderr' }, { fin: true }).resume();
  await new Promise<void>((resolve) => out.once('data', () => resolve()));
  conn.destroy();
  // port-forward: a download cut half-way
  const { url: pfUrl } = await call(h.d.clients.runtime, 'PortForward', {
    pod_sandbox_id: podId,
    port: [8080],
  });
  const pf = await portForwardSpdy(pfUrl);
  const c = await pf.connect(8080);
  c.write('GET /big HTTP/1.0\r\n\r\n');
  await new Promise<void>((resolve) => c.once('data', () => resolve()));
  pf.close();
  await noLeftovers();
  // the daemon still serves
  const r = await run('spdy', shell, ['echo', 'alive']);
  expect(r.out.text).toBe('alive\n');
  const v = await call(h.d.clients.runtime, 'Version', {});
  expect(v.runtime_name).toBeTruthy();
});

test('an unused token expires', async () => {
  await h.d.stop();
  await h.d.restart({ BERTH_STREAMING_TOKEN_TTL_MS: '500' });
  const url = await execUrl(shell, ['true']);
  await new Promise((r) => setTimeout(r, 800));
  await expect(streamExec(url, { stdout: new Sink(), stderr: new Sink() })).rejects.toBeInstanceOf(
    UpgradeError,
  );
  const fresh = await execUrl(shell, ['true']);
  expect((await streamExec(fresh, { stdout: new Sink(), stderr: new Sink() })).exitCode).toBe(0);
});
