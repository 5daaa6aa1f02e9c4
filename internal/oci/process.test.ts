import { Status } from '../errors';
import { buildArgs, buildCwd, buildEnv, DEFAULT_PATH } from './process';
import { parseSignal, stopSignalOf } from './signal';

describe('buildArgs (Kubernetes command/args rules)', () => {
  const img = { Entrypoint: ['/entry', '-x'], Cmd: ['cmd1', 'cmd2'] };
  it.each([
    ['command + args', ['/bin/cmd'], ['a'], img, ['/bin/cmd', 'a']],
    ['command only: image Cmd ignored', ['/bin/cmd'], [], img, ['/bin/cmd']],
    ['args only: Entrypoint + args', [], ['a', 'b'], img, ['/entry', '-x', 'a', 'b']],
    ['neither: Entrypoint + Cmd', [], [], img, ['/entry', '-x', 'cmd1', 'cmd2']],
    ['no Entrypoint: Cmd', [], [], { Cmd: ['sh'] }, ['sh']],
    ['args only, no Entrypoint: args', [], ['echo', 'hi'], { Cmd: ['sh'] }, ['echo', 'hi']],
    ['Entrypoint [""] resets', [], [], { Entrypoint: [''], Cmd: ['sh'] }, ['sh']],
    ['null Entrypoint/Cmd', ['x'], [], { Entrypoint: null, Cmd: null }, ['x']],
  ])('%s', (_name, command, args, image, want) => {
    expect(buildArgs(command, args, image)).toEqual(want);
  });
  it('refuses when nothing gives a command', () => {
    expect(() => buildArgs([], [], {})).toThrow(/no command specified/);
    try {
      buildArgs([], [], undefined);
    } catch (err) {
      expect((err as { code: number }).code).toBe(Status.INVALID_ARGUMENT);
    }
  });
});

describe('buildEnv', () => {
  it('adds PATH and HOSTNAME, image env, then request env overriding in place', () => {
    const env = buildEnv(
      ['A=1', 'B=2', 'PATH=/img/bin'],
      [
        { key: 'B', value: 'override' },
        { key: 'C', value: 'x=y' },
        { key: 'B', value: 'last' },
      ],
      'host1',
    );
    expect(env).toEqual(['PATH=/img/bin', 'HOSTNAME=host1', 'A=1', 'B=last', 'C=x=y']);
  });
  it('defaults PATH when the image has none', () => {
    expect(buildEnv(undefined, [])).toEqual([`PATH=${DEFAULT_PATH}`]);
  });
  it('the image may override HOSTNAME and the request too', () => {
    expect(buildEnv(['HOSTNAME=img'], [], 'h')).toContain('HOSTNAME=img');
    expect(buildEnv(['HOSTNAME=img'], [{ key: 'HOSTNAME', value: 'req' }], 'h')).toContain('HOSTNAME=req');
  });
  it('refuses bad names', () => {
    expect(() => buildEnv([], [{ key: '', value: 'x' }])).toThrow(/empty name/);
    expect(() => buildEnv([], [{ key: 'A=B', value: 'x' }])).toThrow(/invalid environment variable/);
  });
});

describe('buildCwd', () => {
  it('request, image, then /', () => {
    expect(buildCwd('/work', '/img')).toBe('/work');
    expect(buildCwd('', '/img')).toBe('/img');
    expect(buildCwd('', undefined)).toBe('/');
    expect(() => buildCwd('rel', undefined)).toThrow(/absolute/);
  });
});

describe('signals', () => {
  it('parses names and numbers', () => {
    expect(parseSignal('SIGTERM')).toEqual({ name: 'SIGTERM', number: 15 });
    expect(parseSignal('quit')).toEqual({ name: 'SIGQUIT', number: 3 });
    expect(parseSignal('9')).toEqual({ name: 'SIGKILL', number: 9 });
    expect(parseSignal('SIGRTMIN+3')).toEqual({ name: 'SIGRTMIN+3', number: 37 });
    expect(parseSignal('SIGWINCH').number).toBe(28);
    expect(() => parseSignal('SIGNOPE')).toThrow(/invalid signal/);
    expect(() => parseSignal('65')).toThrow(/invalid signal/);
  });
  it('stopSignalOf defaults to SIGTERM', () => {
    expect(stopSignalOf({})).toEqual({ name: 'SIGTERM', number: 15 });
    expect(stopSignalOf(undefined).number).toBe(15);
    expect(stopSignalOf({ config: { StopSignal: 'SIGINT' } })).toEqual({ name: 'SIGINT', number: 2 });
  });
});
