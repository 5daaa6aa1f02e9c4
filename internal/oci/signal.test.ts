import { effectiveStopSignal, parseSignal, signalFromCri, signalToCri } from './signal';

describe('CRI Signal enum', () => {
  it('maps enum values to signals and back', () => {
    for (const [cri, name, num] of [
      ['SIGNAL_SIGUSR1', 'SIGUSR1', 10],
      ['SIGNAL_SIGTERM', 'SIGTERM', 15],
      ['SIGNAL_SIGCLD', 'SIGCHLD', 17],
      ['SIGNAL_SIGRTMIN', 'SIGRTMIN', 34],
      ['SIGNAL_SIGRTMINPLUS3', 'SIGRTMIN+3', 37],
      ['SIGNAL_SIGRTMINPLUS15', 'SIGRTMIN+15', 49],
      ['SIGNAL_SIGRTMAXMINUS14', 'SIGRTMAX-14', 50],
      ['SIGNAL_SIGRTMAXMINUS1', 'SIGRTMAX-1', 63],
      ['SIGNAL_SIGRTMAX', 'SIGRTMAX', 64],
    ] as const) {
      expect(signalFromCri(cri)).toEqual({ name, number: num });
      if (cri !== 'SIGNAL_SIGCLD') expect(signalToCri(name)).toBe(cri);
    }
  });
  it('every signal number has an enum value that maps back to it', () => {
    for (let n = 1; n <= 64; n++) {
      if (n === 32 || n === 33) continue; // glibc-reserved, no name
      const s = parseSignal(String(n));
      expect(signalFromCri(signalToCri(s.name))?.number).toBe(n);
    }
  });
  it('RUNTIME_DEFAULT (or unset) means no override', () => {
    expect(signalFromCri('SIGNAL_RUNTIME_DEFAULT')).toBeUndefined();
    expect(signalFromCri(undefined)).toBeUndefined();
    expect(signalFromCri(0)).toBeUndefined();
  });
  it('an unknown value is INVALID_ARGUMENT', () => {
    expect(() => signalFromCri(99)).toThrow(/not a signal/);
    expect(() => signalFromCri('SIGNAL_SIGFOO')).toThrow(/invalid signal/);
  });
  it("the config's signal overrides the image's, which overrides SIGTERM", () => {
    const img = { config: { StopSignal: 'SIGQUIT' } } as never;
    expect(effectiveStopSignal('SIGNAL_SIGUSR2', img).name).toBe('SIGUSR2');
    expect(effectiveStopSignal('SIGNAL_RUNTIME_DEFAULT', img).name).toBe('SIGQUIT');
    expect(effectiveStopSignal(undefined, undefined).name).toBe('SIGTERM');
  });
});
