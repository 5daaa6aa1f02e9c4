import {
  ALL_CAPABILITIES,
  buildCapabilities,
  capabilitiesFromMask,
  DEFAULT_CAPABILITIES,
  normalizeCapability,
} from './capabilities';

const req = (add: string[] = [], drop: string[] = [], ambient: string[] = []) => ({
  add_capabilities: add,
  drop_capabilities: drop,
  add_ambient_capabilities: ambient,
});

describe('capabilities', () => {
  it('default set is Docker’s 14', () => {
    const c = buildCapabilities({ privileged: false });
    expect(new Set(c.bounding)).toEqual(new Set(DEFAULT_CAPABILITIES));
    expect(c.bounding).toHaveLength(14);
    expect(c.effective).toEqual(c.bounding);
    expect(c.permitted).toEqual(c.bounding);
    expect(c.inheritable).toEqual([]);
    expect(c.ambient).toEqual([]);
    expect(c.bounding).not.toContain('CAP_SYS_ADMIN');
  });
  it('add and drop, with or without the CAP_ prefix, any case', () => {
    const c = buildCapabilities({
      privileged: false,
      request: req(['NET_ADMIN', 'cap_sys_time'], ['CHOWN', 'CAP_KILL']),
    });
    expect(c.bounding).toContain('CAP_NET_ADMIN');
    expect(c.bounding).toContain('CAP_SYS_TIME');
    expect(c.bounding).not.toContain('CAP_CHOWN');
    expect(c.bounding).not.toContain('CAP_KILL');
    expect(c.bounding).toHaveLength(14);
  });
  it('drop ALL then add X → only X', () => {
    expect(
      buildCapabilities({ privileged: false, request: req(['NET_BIND_SERVICE'], ['ALL']) }).bounding,
    ).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(buildCapabilities({ privileged: false, request: req([], ['all']) }).bounding).toEqual([]);
  });
  it('add ALL → every capability; add ALL + drop X → all but X', () => {
    expect(buildCapabilities({ privileged: false, request: req(['ALL']) }).bounding).toEqual([
      ...ALL_CAPABILITIES,
    ]);
    const c = buildCapabilities({ privileged: false, request: req(['ALL'], ['SYS_ADMIN']) });
    expect(c.bounding).toHaveLength(ALL_CAPABILITIES.length - 1);
    expect(c.bounding).not.toContain('CAP_SYS_ADMIN');
  });
  it('add ALL uses the host capabilities when given', () => {
    const host = ['CAP_CHOWN', 'CAP_SYS_ADMIN'];
    const c = buildCapabilities({ privileged: false, request: req(['ALL'], []), hostCapabilities: host });
    expect(new Set(c.bounding)).toEqual(new Set([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']));
  });
  it('unknown capabilities are refused', () => {
    expect(() => buildCapabilities({ privileged: false, request: req(['NOPE']) })).toThrow(
      /add_capabilities: unknown capability NOPE/,
    );
    expect(() => normalizeCapability('CAP_CAP_CHOWN')).toThrow(/unknown/);
  });
  it('ambient capabilities go to ambient, inheritable and the other sets', () => {
    const c = buildCapabilities({ privileged: false, request: req([], ['ALL'], ['NET_BIND_SERVICE']) });
    expect(c.ambient).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(c.inheritable).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(c.permitted).toEqual(['CAP_NET_BIND_SERVICE']);
  });
  it('privileged: all capabilities (or the host’s), add/drop ignored', () => {
    const all = buildCapabilities({ privileged: true, request: req([], ['ALL']) });
    expect(all.bounding).toEqual([...ALL_CAPABILITIES]);
    expect(all.bounding).toContain('CAP_CHECKPOINT_RESTORE');
    const host = capabilitiesFromMask('000001fffeffffff');
    expect(host).not.toContain('CAP_SYS_RESOURCE');
    expect(host).toHaveLength(40);
    expect(buildCapabilities({ privileged: true, hostCapabilities: host }).effective).toEqual(host);
  });
  it('capabilitiesFromMask', () => {
    expect(capabilitiesFromMask('00000000a80425fb')).toEqual([
      'CAP_CHOWN',
      'CAP_DAC_OVERRIDE',
      'CAP_FOWNER',
      'CAP_FSETID',
      'CAP_KILL',
      'CAP_SETGID',
      'CAP_SETUID',
      'CAP_SETPCAP',
      'CAP_NET_BIND_SERVICE',
      'CAP_NET_RAW',
      'CAP_SYS_CHROOT',
      'CAP_MKNOD',
      'CAP_AUDIT_WRITE',
      'CAP_SETFCAP',
    ]);
  });
});
