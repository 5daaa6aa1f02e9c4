import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect } from '../../api/client';
import { fail, sink, startFakeCri, type FakeCri } from '../../test/lab/fake-cri';
import { logs } from './logs';
import { run } from './main';

const C1 = 'c'.repeat(64);
const T = (s: number): string => `2024-05-01T12:00:${String(s).padStart(2, '0')}.5Z`;

let fake: FakeCri;
let logPath: string;
let state: string;

beforeEach(async () => {
  fake = await startFakeCri();
  logPath = path.join(fake.dir, 'c', '0.log');
  await fs.promises.mkdir(path.dirname(logPath));
  state = 'CONTAINER_RUNNING';
  fake.on('ContainerStatus', (req) => {
    if (req.container_id !== C1) throw fail(grpc.status.NOT_FOUND, 'no such container');
    return { status: { id: C1, state, log_path: logPath } };
  });
});
afterEach(async () => {
  await fake.close();
});

const ctl = async (...argv: string[]) => {
  const out = sink();
  const err = sink();
  const code = await run(['--endpoint', fake.endpoint, ...argv], out, err);
  return { code, out: out.text, err: err.text };
};

describe('logs', () => {
  beforeEach(async () => {
    await fs.promises.writeFile(
      logPath,
      [
        `${T(1)} stdout F one`,
        `${T(2)} stderr F oops`,
        `${T(3)} stdout P tw`,
        `${T(4)} stdout F o`,
        `${T(5)} stdout F three`,
        `${T(6)} stderr P no newline yet`,
        '',
      ].join('\n'),
    );
  });

  it('splits stdout and stderr, joins partial lines', async () => {
    expect(await ctl('logs', C1)).toEqual({ code: 0, out: 'one\ntwo\nthree\n', err: 'oops\nno newline yet' });
    expect(fake.calls[0].req).toEqual({ container_id: C1, verbose: false });
  });

  it('--tail and --timestamps', async () => {
    expect(await ctl('logs', '--tail', '2', '-t', C1)).toEqual({
      code: 0,
      out: `${T(3)} two\n${T(5)} three\n`,
      err: `${T(6)} no newline yet`,
    });
    expect((await ctl('logs', '--tail=0', C1)).out).toBe('');
  });

  it('--since', async () => {
    expect((await ctl('logs', '--since', T(3), C1)).out).toBe('two\nthree\n');
    expect((await ctl('logs', '--since', '1h', C1)).out).toBe(''); // the file is from 2024
    expect((await ctl('logs', '--since', 'soon', C1)).code).toBe(2);
  });

  it('fails clearly when the log file is missing or the container unknown', async () => {
    await fs.promises.rm(logPath);
    expect((await ctl('logs', C1)).err).toContain('does not exist');
    expect(await ctl('logs', 'x'.repeat(64))).toMatchObject({
      code: 1,
      err: expect.stringContaining('no such container'),
    });
  });

  it('-f follows until the container exits, across a rotation', async () => {
    const clients = connect(fake.endpoint);
    const out = sink();
    const err = sink();
    try {
      const done = logs(clients, ['-f', C1], out, err, { pollMs: 20, statusMs: 40 });
      const waitFor = async (s: string): Promise<void> => {
        for (let i = 0; i < 300 && !out.text.includes(s); i++) await new Promise((r) => setTimeout(r, 10));
        expect(out.text).toContain(s);
      };
      await waitFor('three\n');
      await fs.promises.appendFile(logPath, `${T(7)} stderr F  done\n${T(8)} stdout F four\n`);
      await waitFor('four\n');
      await fs.promises.rename(logPath, `${logPath}.1`);
      await fs.promises.writeFile(logPath, `${T(9)} stdout F five\n`);
      await waitFor('five\n');
      await fs.promises.appendFile(logPath, `${T(9)} stdout F six\n`);
      state = 'CONTAINER_EXITED';
      await done;
      expect(out.text).toBe('one\ntwo\nthree\nfour\nfive\nsix\n');
      expect(err.text).toBe('oops\nno newline yet done\n');
      const statusCalls = fake.calls.filter((c) => c.method === 'ContainerStatus').length;
      expect(statusCalls).toBeGreaterThanOrEqual(2);
    } finally {
      clients.close();
    }
  });

  it('-f stops on the abort signal (SIGINT) while the container runs', async () => {
    const clients = connect(fake.endpoint);
    const ac = new AbortController();
    const out = sink();
    try {
      const done = logs(clients, ['-f', '--tail', '1', C1], out, sink(), { signal: ac.signal, pollMs: 20 });
      for (let i = 0; i < 300 && !out.text; i++) await new Promise((r) => setTimeout(r, 10));
      ac.abort();
      await done;
      expect(out.text).toBe('three\n');
    } finally {
      clients.close();
    }
  });
});
