import { PassThrough } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { fail, sink, startFakeCri, type FakeCri } from '../../test/lab/fake-cri';
import { UsageError } from './common';
import { run } from './main';
import { eofAsCtrlD, parseAttachArgs, parsePortForwardArgs, parsePortSpec } from './streaming';

describe('parsePortSpec', () => {
  it('takes PORT, LOCAL:REMOTE and :REMOTE', () => {
    expect(parsePortSpec('8080')).toEqual({ local: 8080, remote: 8080 });
    expect(parsePortSpec('9000:80')).toEqual({ local: 9000, remote: 80 });
    expect(parsePortSpec(':80')).toEqual({ local: 0, remote: 80 });
  });
  it.each(['', '0', '65536', 'http', '80:', '1:2:3', '-1', '8080 ', ':0', '123456'])('refuses %j', (s) => {
    expect(() => parsePortSpec(s)).toThrow(UsageError);
  });
});

describe('parsePortForwardArgs', () => {
  it('reads the pod, the ports and the transport', () => {
    expect(parsePortForwardArgs(['pod1', '8080', ':9090'])).toEqual({
      transport: 'spdy',
      pod: 'pod1',
      ports: [
        { local: 8080, remote: 8080 },
        { local: 0, remote: 9090 },
      ],
    });
    expect(parsePortForwardArgs(['--transport=websocket', 'p', '1:2']).transport).toBe('websocket');
  });
  it('refuses no ports, a reused local port, a bad transport', () => {
    expect(() => parsePortForwardArgs(['pod1'])).toThrow(UsageError);
    expect(() => parsePortForwardArgs(['pod1', '80', '80:81'])).toThrow(/local port 80 given twice/);
    expect(parsePortForwardArgs(['p', ':80', ':81']).ports).toHaveLength(2);
    expect(() => parsePortForwardArgs(['--transport', 'quic', 'p', '80'])).toThrow(/spdy or websocket/);
    expect(() => parsePortForwardArgs(['--bogus', 'p', '80'])).toThrow(UsageError);
  });
});

describe('parseAttachArgs', () => {
  it('reads -i, -t, --transport and the id', () => {
    expect(parseAttachArgs(['-it', 'abc'])).toEqual({
      stdin: true,
      tty: true,
      transport: 'spdy',
      id: 'abc',
    });
    expect(parseAttachArgs(['--stdin', '--transport', 'websocket', 'abc'])).toEqual({
      stdin: true,
      tty: false,
      transport: 'websocket',
      id: 'abc',
    });
  });
  it.each([[[]], [['a', 'b']], [['-x', 'a']], [['--transport', 'tcp', 'a']]])('refuses %j', (argv) => {
    expect(() => parseAttachArgs(argv)).toThrow(UsageError);
  });
});

describe('eofAsCtrlD', () => {
  const through = async (chunks: string[]): Promise<string> => {
    const src = new PassThrough();
    const out = eofAsCtrlD(src);
    let s = '';
    out.on('data', (c: Buffer) => (s += c.toString()));
    for (const c of chunks) src.write(c);
    src.end();
    await new Promise((r) => setImmediate(r));
    return s;
  };
  it('ends input with one ^D after a newline, two after a partial line', async () => {
    expect(await through(['a\n', 'b\n'])).toBe('a\nb\n\x04');
    expect(await through(['a\nb'])).toBe('a\nb\x04\x04');
    expect(await through([])).toBe('\x04');
  });
});

describe('through the CLI', () => {
  let fake: FakeCri;
  beforeEach(async () => {
    fake = await startFakeCri();
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

  it('attach asks the Attach RPC and reports its refusal', async () => {
    fake.on('Attach', () => {
      throw fail(grpc.status.INVALID_ARGUMENT, 'tty true does not match the container');
    });
    const id = 'a'.repeat(64);
    expect(await ctl('attach', '-t', id)).toMatchObject({
      code: 1,
      err: 'berthctl attach: tty true does not match the container\n',
    });
    expect(fake.calls[0]).toEqual({
      method: 'Attach',
      req: { container_id: id, stdin: false, tty: true, stdout: true, stderr: false },
    });
  });

  it('port-forward asks PortForward for the remote ports before listening', async () => {
    fake.on('PortForward', () => {
      throw fail(grpc.status.FAILED_PRECONDITION, 'pod is not ready');
    });
    const pod = 'b'.repeat(64);
    const r = await ctl('port-forward', pod, ':80', '9999:81');
    expect(r).toMatchObject({ code: 1, out: '', err: 'berthctl port-forward: pod is not ready\n' });
    expect(fake.calls[0]).toEqual({ method: 'PortForward', req: { pod_sandbox_id: pod, port: [80, 81] } });
  });

  it('a usage error exits 2', async () => {
    expect((await ctl('port-forward', 'pod')).code).toBe(2);
    expect((await ctl('attach')).code).toBe(2);
  });
});
