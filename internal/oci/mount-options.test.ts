import { acceptedMountOptions, planMountOptions, type MountOptionsRequest } from './mount-options';

const RUNC_OPTS = ['rro', 'rnoexec', 'rnosuid', 'nosuid', 'noexec'];
const req = (options: string[], o: Partial<MountOptionsRequest> = {}): MountOptionsRequest => ({
  options,
  readonly: false,
  recursiveReadOnly: false,
  runtimeOptions: RUNC_OPTS,
  ...o,
});

describe('planMountOptions', () => {
  it('accepts the per-mount bind options and keeps their order, without duplicates', () => {
    expect(planMountOptions(req(['nosuid', 'nodev', 'noexec', 'relatime', 'nodiratime', 'nosuid']))).toEqual({
      ok: true,
      extra: ['nosuid', 'nodev', 'noexec', 'relatime', 'nodiratime'],
      readonly: false,
      recursiveReadOnly: false,
    });
  });
  it('ro and rw resolve into the readonly flag, never into extra', () => {
    expect(planMountOptions(req(['ro']))).toMatchObject({ ok: true, extra: [], readonly: true });
    expect(planMountOptions(req(['rw']))).toMatchObject({ ok: true, extra: [], readonly: false });
    expect(planMountOptions(req(['ro'], { readonly: true }))).toMatchObject({ ok: true, readonly: true });
    expect(planMountOptions(req(['rw'], { readonly: true }))).toEqual({
      ok: false,
      option: 'rw',
      reason: 'contradicts readonly',
    });
    expect(planMountOptions(req(['ro', 'rw']))).toMatchObject({
      ok: false,
      option: 'rw',
      reason: 'contradicts ro',
    });
  });
  it('rro makes the mount recursively read-only when the runtime lists it', () => {
    expect(planMountOptions(req(['rro']))).toEqual({
      ok: true,
      extra: [],
      readonly: true,
      recursiveReadOnly: true,
    });
    expect(planMountOptions(req(['rro'], { runtimeOptions: ['ro'] }))).toMatchObject({
      ok: false,
      option: 'rro',
      reason: expect.stringMatching(/not supported by the runtime/),
    });
    expect(planMountOptions(req(['ro'], { readonly: true, recursiveReadOnly: true }))).toMatchObject({
      ok: true,
      recursiveReadOnly: true,
    });
  });
  it('recursive forms only when the runtime lists them', () => {
    expect(planMountOptions(req(['rnoexec']))).toMatchObject({ ok: true, extra: ['rnoexec'] });
    expect(planMountOptions(req(['rnodev']))).toMatchObject({ ok: false, option: 'rnodev' });
    expect(planMountOptions(req(['rnoexec'], { runtimeOptions: undefined }))).toMatchObject({ ok: false });
  });
  it('refuses contradictions, propagation, filesystem options and empty entries, naming the option', () => {
    expect(planMountOptions(req(['noexec', 'exec']))).toEqual({
      ok: false,
      option: 'exec',
      reason: 'contradicts noexec',
    });
    expect(planMountOptions(req(['noatime', 'relatime']))).toMatchObject({ ok: false, option: 'relatime' });
    expect(planMountOptions(req(['rshared']))).toMatchObject({
      ok: false,
      option: 'rshared',
      reason: expect.stringMatching(/Mount.propagation/),
    });
    for (const o of ['size=1m', 'bind', 'rbind', 'remount', 'sync', 'uid=0', 'mand'])
      expect(planMountOptions(req([o]))).toMatchObject({
        ok: false,
        option: o,
        reason: expect.stringMatching(/^is not supported \(accepted: ro, rw, nosuid/),
      });
    expect(planMountOptions(req(['']))).toMatchObject({ ok: false, reason: 'is empty' });
  });
  it('lists the accepted options: the bind set plus the recursive ones the runtime has', () => {
    const list = acceptedMountOptions(['rro', 'rnoexec', 'tmpcopyup']);
    expect(list).toContain('noexec');
    expect(list).toContain('rro');
    expect(list).toContain('rnoexec');
    expect(list).not.toContain('tmpcopyup');
    expect(list).not.toContain('rnosuid');
  });
});
