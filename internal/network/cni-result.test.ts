import { parseCniResult, podIPs } from './cni-result';

describe('parseCniResult', () => {
  test('1.0.0 result (bridge): interfaces, ips without version, routes, dns', () => {
    const raw = {
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'cni0', mac: 'aa:bb:cc:dd:ee:01' },
        { name: 'veth1', mac: 'aa:bb:cc:dd:ee:02' },
        { name: 'eth0', mac: 'aa:bb:cc:dd:ee:03', sandbox: '/run/berth/netns/p1' },
      ],
      ips: [
        { address: '10.88.0.5/16', gateway: '10.88.0.1', interface: 2 },
        { address: 'fd00::5/64', gateway: 'fd00::1', interface: 2 },
      ],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }],
      dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] },
    };
    const r = parseCniResult(raw, '1.0.0');
    expect(r).toEqual({
      cniVersion: '1.0.0',
      interfaces: raw.interfaces,
      ips: raw.ips,
      routes: raw.routes,
      dns: raw.dns,
    });
    expect(podIPs(r, 'eth0')).toEqual(['10.88.0.5', 'fd00::5']);
  });

  test('0.4.0 result with version fields', () => {
    const r = parseCniResult(
      {
        cniVersion: '0.4.0',
        interfaces: [{ name: 'eth0', sandbox: '/proc/1/ns/net' }],
        ips: [{ version: '4', address: '10.1.0.2/24', interface: 0 }],
        dns: {},
      },
      '0.4.0',
    );
    expect(r.ips).toEqual([{ address: '10.1.0.2/24', interface: 0 }]);
    expect(r.dns).toBeUndefined();
    expect(podIPs(r, 'eth0')).toEqual(['10.1.0.2']);
  });

  test('0.2.0 result (ip4/ip6)', () => {
    const r = parseCniResult(
      {
        cniVersion: '0.2.0',
        ip4: { ip: '10.2.0.3/16', gateway: '10.2.0.1', routes: [{ dst: '0.0.0.0/0' }] },
        ip6: { ip: 'fd01::3/64' },
      },
      '0.2.0',
    );
    expect(r.ips).toEqual([{ address: '10.2.0.3/16', gateway: '10.2.0.1' }, { address: 'fd01::3/64' }]);
    expect(r.routes).toEqual([{ dst: '0.0.0.0/0' }]);
    expect(podIPs(r, 'eth0')).toEqual(['10.2.0.3', 'fd01::3']);
  });

  test('missing cniVersion falls back to the config version', () => {
    expect(parseCniResult({ ips: [] }, '0.3.1').cniVersion).toBe('0.3.1');
  });

  test.each([
    [null, /not a JSON object/],
    [{ ips: {} }, /ips is not a list/],
    [{ ips: [{ address: 'nope/24' }] }, /not an IP address/],
    [{ ips: [{}] }, /address is not a string/],
    [{ interfaces: [{}] }, /interfaces\[0\] has no name/],
    [{ ip4: 'x' }, /ip4 is not an object/],
  ])('rejects garbage %#', (raw, msg) => {
    expect(() => parseCniResult(raw, '1.0.0')).toThrow(msg);
  });
});

describe('podIPs', () => {
  test('only IPs of the named interface inside the sandbox; v4 first; deduplicated', () => {
    const r = parseCniResult(
      {
        cniVersion: '1.0.0',
        interfaces: [
          { name: 'lo', sandbox: '/ns' },
          { name: 'eth0', sandbox: '/ns' },
          { name: 'br0' },
          { name: 'eth0' },
        ],
        ips: [
          { address: '127.0.0.1/8', interface: 0 },
          { address: 'fd00::9/64', interface: 1 },
          { address: '10.0.0.9/24', interface: 1 },
          { address: '10.0.0.1/24', interface: 2 },
          { address: '10.0.0.7/24', interface: 3 },
          { address: '10.0.0.9/24', interface: 1 },
        ],
      },
      '1.0.0',
    );
    expect(podIPs(r, 'eth0')).toEqual(['10.0.0.9', 'fd00::9']);
    expect(podIPs(r, 'net1')).toEqual([]);
  });

  test('IPs not tied to an interface are kept', () => {
    const r = parseCniResult(
      { cniVersion: '1.0.0', ips: [{ address: '10.3.0.4/24' }, { address: '10.3.0.5/24', interface: 7 }] },
      '1.0.0',
    );
    expect(podIPs(r, 'eth0')).toEqual(['10.3.0.4', '10.3.0.5']);
  });
});
