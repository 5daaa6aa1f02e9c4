// A CNI config for integration tests: a bridge whose subnet lives only on this machine, host-local
// IPAM with its allocations in a temp dir (so leaks are visible), portmap for hostPort, no NAT.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface LabNetwork {
  confDir: string;
  /** host-local's allocation dir: one file per allocated IP */
  ipamDir: string;
  bridge: string;
  subnet: string;
  /** IPs currently allocated (files in ipamDir that look like addresses) */
  allocated(): string[];
  cleanup(): void;
}

function natRules(): string {
  try {
    return execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

/**
 * The bridge plugin turns on ip_forward (isGateway) and portmap creates shared CNI-HOSTPORT-*
 * chains; cleanup() puts both back as they were when the lab network was made.
 */
export function makeLabNetwork(bridge = 'berthit0', subnet = '10.252.0.0/24'): LabNetwork {
  const ipForwardBefore = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  const hadHostportChains = natRules().includes('CNI-HOSTPORT-DNAT');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cni-'));
  const confDir = path.join(dir, 'net.d');
  const ipamDir = path.join(dir, 'ipam');
  fs.mkdirSync(confDir);
  fs.writeFileSync(
    path.join(confDir, '10-lab.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'berth-lab',
      plugins: [
        { type: 'loopback' },
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: ipamDir },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    }),
  );
  return {
    confDir,
    ipamDir,
    bridge,
    subnet,
    allocated() {
      const d = path.join(ipamDir, 'berth-lab');
      if (!fs.existsSync(d)) return [];
      return fs.readdirSync(d).filter((n) => /^[0-9.]+$|:/.test(n));
    },
    cleanup() {
      try {
        execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
      } catch {
        // not created, or already gone
      }
      fs.rmSync(dir, { recursive: true, force: true });
      const nat = natRules();
      if (!hadHostportChains && nat.includes('CNI-HOSTPORT-DNAT') && !/:CNI-DN-/.test(nat)) {
        for (const line of nat.split('\n')) {
          if (/^-A (OUTPUT|PREROUTING|POSTROUTING) .*-j CNI-HOSTPORT-/.test(line)) {
            try {
              // the rule text keeps its shell quoting (comments), so let sh split it
              execFileSync('sh', ['-c', `iptables -t nat ${line.replace(/^-A /, '-D ')}`], {
                stdio: 'ignore',
              });
            } catch {
              // already gone
            }
          }
        }
        for (const chain of ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-SETMARK', 'CNI-HOSTPORT-MASQ']) {
          for (const op of ['-F', '-X']) {
            try {
              execFileSync('iptables', ['-t', 'nat', op, chain], { stdio: 'ignore' });
            } catch {
              // not there
            }
          }
        }
      }
      fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', ipForwardBefore);
    },
  };
}
