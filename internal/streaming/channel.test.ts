import { once } from 'events';
import * as http from 'http';
import { AddressInfo } from 'net';
import { WebSocket, WebSocketServer } from 'ws';
import {
  EXEC_SPDY_PROTOCOLS,
  EXEC_WS_PROTOCOLS,
  PORTFORWARD_WS_PROTOCOLS,
  Channel,
  ResizeDecoder,
  WsChannelMux,
  decodePortPrefix,
  decodeWsMessage,
  encodeErrorStream,
  encodePortPrefix,
  encodeResize,
  encodeWsMessage,
  exitCodeStatus,
  expectedExecStreams,
  goJson,
  internalErrorStatus,
  negotiateStreamProtocol,
  parsePortsQuery,
  parseProtocolHeader,
  portForwardChannels,
  selectWsProtocol,
  successStatus,
  wsProtocolInfo,
} from './channel';

describe('SPDY protocol negotiation', () => {
  it('picks the client’s first supported protocol', () => {
    const r = negotiateStreamProtocol(['v4.channel.k8s.io', 'v3.channel.k8s.io'], EXEC_SPDY_PROTOCOLS);
    expect(r).toEqual({
      ok: true,
      protocol: 'v4.channel.k8s.io',
      responseHeaders: { 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' },
    });
    // Node joins repeated headers with ", "; client order wins over ours.
    const j = negotiateStreamProtocol(
      'v9.channel.k8s.io, channel.k8s.io,v2.channel.k8s.io',
      EXEC_SPDY_PROTOCOLS,
    );
    expect(j.ok && j.protocol).toBe('channel.k8s.io');
  });

  it('403 with the accepted list when nothing matches, 400 when the header is missing', () => {
    const r = negotiateStreamProtocol('v5.channel.k8s.io', EXEC_SPDY_PROTOCOLS);
    expect(r.ok).toBe(false);
    if (r.ok) throw new Error('ok');
    expect(r.status).toBe(403);
    expect(r.message).toBe(
      'unable to upgrade: unable to negotiate protocol: client supports [v5.channel.k8s.io], server accepts ' +
        '[v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]',
    );
    expect(r.responseHeaders['X-Accepted-Stream-Protocol-Versions']).toEqual(EXEC_SPDY_PROTOCOLS);
    const m = negotiateStreamProtocol(undefined, EXEC_SPDY_PROTOCOLS);
    expect(m).toMatchObject({
      ok: false,
      status: 400,
      message: 'unable to upgrade: X-Stream-Protocol-Version is required',
    });
    expect(parseProtocolHeader([' a ,b', '', 'c'])).toEqual(['a', 'b', 'c']);
  });

  it('counts the streams kubelet waits for', () => {
    const o = { stdin: true, stdout: true, stderr: true, tty: true };
    expect(expectedExecStreams(o, 'v4.channel.k8s.io')).toEqual(['error', 'stdin', 'stdout', 'resize']);
    expect(expectedExecStreams(o, 'v2.channel.k8s.io')).toEqual(['error', 'stdin', 'stdout']);
    expect(expectedExecStreams({ ...o, tty: false }, 'channel.k8s.io')).toEqual([
      'error',
      'stdin',
      'stdout',
      'stderr',
    ]);
  });
});

describe('error stream status', () => {
  it('encodes metav1.Status exactly as kubelet does on v4+', () => {
    expect(encodeErrorStream(successStatus(), 'v4.channel.k8s.io')?.toString()).toBe(
      '{"metadata":{},"status":"Success"}',
    );
    expect(
      encodeErrorStream(exitCodeStatus(3, ['sh', '-c', 'exit 3']), 'v4.channel.k8s.io')?.toString(),
    ).toBe(
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing ' +
        'command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
    );
    expect(goJson(internalErrorStatus('boom <&>'))).toBe(
      '{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: ' +
        'boom \\u003c\\u0026\\u003e","reason":"InternalError","details":{"causes":[{"message":"error executing command ' +
        'in container: boom \\u003c\\u0026\\u003e"}]},"code":500}',
    );
  });

  it('pre-v4: text for failures, nothing for success', () => {
    expect(encodeErrorStream(successStatus(), 'v3.channel.k8s.io')).toBeNull();
    expect(encodeErrorStream(exitCodeStatus(2), 'channel.k8s.io')?.toString()).toBe(
      'command terminated with non-zero exit code: exit code 2',
    );
  });
});

describe('resize messages', () => {
  it('round-trips, split at every byte, with and without newlines', () => {
    const wire = Buffer.concat([
      encodeResize({ width: 80, height: 24 }),
      Buffer.from('{"Width":120,"Height":40}{"Height":1, "Width" : 2, "x":"}{"}'),
      encodeResize({ width: 65535, height: 0 }),
    ]);
    expect(encodeResize({ width: 80, height: 24 }).toString()).toBe('{"Width":80,"Height":24}\n');
    const want = [
      { width: 80, height: 24 },
      { width: 120, height: 40 },
      { width: 2, height: 1 },
      { width: 65535, height: 0 },
    ];
    expect(new ResizeDecoder().push(wire)).toEqual(want);
    const d = new ResizeDecoder();
    const got = [];
    for (let i = 0; i < wire.length; i++) got.push(...d.push(wire.subarray(i, i + 1)));
    expect(got).toEqual(want);
  });

  it('rejects garbage and out-of-range sizes', () => {
    expect(() => new ResizeDecoder().push('hello')).toThrow();
    expect(() => new ResizeDecoder().push('{"Width":70000,"Height":1}')).toThrow(/size/);
    expect(() => new ResizeDecoder().push('{"Width":-1,"Height":1}')).toThrow(/size/);
  });
});

describe('WebSocket channel framing', () => {
  const bin = wsProtocolInfo('v4.channel.k8s.io');
  const b64 = wsProtocolInfo('base64.channel.k8s.io');
  const v5 = wsProtocolInfo('v5.channel.k8s.io');

  it('knows each protocol', () => {
    expect(v5).toEqual({ name: 'v5.channel.k8s.io', version: 5, base64: false, closeSignal: true });
    expect(wsProtocolInfo('v4.base64.channel.k8s.io')).toMatchObject({
      version: 4,
      base64: true,
      closeSignal: false,
    });
    expect(wsProtocolInfo('')).toMatchObject({ version: 1, base64: false });
    expect(selectWsProtocol(['foo', 'v4.channel.k8s.io', 'v5.channel.k8s.io'], EXEC_WS_PROTOCOLS)).toBe(
      'v4.channel.k8s.io',
    );
    expect(selectWsProtocol([], EXEC_WS_PROTOCOLS)).toBe('');
    expect(selectWsProtocol(['foo'], PORTFORWARD_WS_PROTOCOLS)).toBeNull();
  });

  it('binary and base64 framing match kubelet’s examples', () => {
    // wsstream's doc examples: "foo\n" on stdin; "\n" on stdout.
    expect(encodeWsMessage(bin, 0, Buffer.from('foo\n'))).toEqual({
      data: Buffer.from([0, 102, 111, 111, 10]),
      binary: true,
    });
    expect(encodeWsMessage(b64, 1, Buffer.from('\n'))).toEqual({ data: '1Cg==', binary: false });
    expect(decodeWsMessage(b64, Buffer.from('0Zm9vCg=='))).toEqual({
      kind: 'data',
      channel: 0,
      data: Buffer.from('foo\n'),
    });
    expect(decodeWsMessage(bin, Buffer.from([2, 65]))).toEqual({
      kind: 'data',
      channel: 2,
      data: Buffer.from('A'),
    });
    expect(decodeWsMessage(bin, Buffer.alloc(0))).toEqual({ kind: 'empty' });
    expect(() => decodeWsMessage(b64, Buffer.from('0Zm9v!'))).toThrow(/base64/);
  });

  it('v5 close signal', () => {
    expect(decodeWsMessage(v5, Buffer.from([255, 0]))).toEqual({ kind: 'close', channel: 0 });
    expect(() => decodeWsMessage(v5, Buffer.from([255, 0, 1]))).toThrow();
    // Before v5, 255 is just a channel number.
    expect(decodeWsMessage(bin, Buffer.from([255, 0]))).toEqual({
      kind: 'data',
      channel: 255,
      data: Buffer.from([0]),
    });
  });

  it('port-forward channels and port prefix', () => {
    expect(portForwardChannels(0)).toEqual({ data: 0, error: 1 });
    expect(portForwardChannels(2)).toEqual({ data: 4, error: 5 });
    expect(encodePortPrefix(8080)).toEqual(Buffer.from([0x90, 0x1f]));
    expect(decodePortPrefix(Buffer.from([0x90, 0x1f, 9]))).toBe(8080);
    expect(parsePortsQuery(['80,443', '8080'])).toEqual([80, 443, 8080]);
    expect(() => parsePortsQuery([])).toThrow(/required/);
    expect(() => parsePortsQuery(['0'])).toThrow();
    expect(() => parsePortsQuery(['70000'])).toThrow();
  });
});

describe('WsChannelMux over a real ws connection', () => {
  let server: http.Server;
  let wss: WebSocketServer;
  let url: string;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    server = http.createServer();
    wss = new WebSocketServer({
      server,
      handleProtocols: (offered) => selectWsProtocol(offered, EXEC_WS_PROTOCOLS) || false,
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    for (const s of sockets) s.terminate();
    wss.close();
    await new Promise((r) => server.close(r));
  });

  async function connect(protocol: string): Promise<{ srv: WsChannelMux; cli: WsChannelMux }> {
    const srvP = once(wss, 'connection');
    const ws = new WebSocket(url, [protocol]);
    sockets.push(ws);
    await once(ws, 'open');
    const [sws] = (await srvP) as [WebSocket];
    sockets.push(sws);
    expect(sws.protocol).toBe(protocol);
    return {
      srv: new WsChannelMux(sws, wsProtocolInfo(sws.protocol)),
      cli: new WsChannelMux(ws, wsProtocolInfo(ws.protocol)),
    };
  }

  const collect = (s: NodeJS.ReadableStream): Promise<Buffer> =>
    new Promise((resolve) => {
      const parts: Buffer[] = [];
      s.on('data', (c: Buffer) => parts.push(c));
      s.on('end', () => resolve(Buffer.concat(parts)));
    });

  it.each(['v5.channel.k8s.io', 'base64.channel.k8s.io'])('exec-style session over %s', async (protocol) => {
    const { srv, cli } = await connect(protocol);
    const stdin = srv.channel(Channel.STDIN);
    const stdout = cli.channel(Channel.STDOUT);
    const errCh = cli.channel(Channel.ERROR);
    const gotStdin = collect(stdin);
    const gotStdout = collect(stdout);
    const gotErr = collect(errCh);
    // The server echoes stdin to stdout.
    stdin.on('data', (c: Buffer) => srv.channel(Channel.STDOUT).write(c));
    const payload = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const cin = cli.channel(Channel.STDIN);
    cin.write(payload.subarray(0, 1000));
    cin.end(payload.subarray(1000));
    if (protocol.startsWith('v5')) {
      // v5: end() on the client is a half-close the server sees as EOF on stdin.
      expect((await gotStdin).equals(payload)).toBe(true);
    } else {
      await new Promise((r) => setTimeout(r, 300));
    }
    srv
      .channel(Channel.ERROR)
      .end(encodeErrorStream(successStatus(), 'v4.channel.k8s.io') ?? Buffer.alloc(0));
    await new Promise((r) => setTimeout(r, 50));
    srv.close();
    const out = await gotStdout;
    expect(out.equals(payload)).toBe(true);
    expect((await gotErr).toString()).toBe('{"metadata":{},"status":"Success"}');
  });
});
