// Security contexts end to end (issue 14 items 4 and 5): seccomp Localhost profiles read from the
// node by absolute path (container, pod, and the deprecated seccomp_profile_path form), and
// SupplementalGroupsPolicy Merge/Strict with ContainerStatus.user read from the real process.
// Real berthd, runc, conmon, CNI and a lab image whose /etc/group gives its user extra groups.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { call } from '../../api/client';
import type { ContainerConfig, LinuxContainerSecurityContext, PodSandboxConfig } from '../../api/generated';
import type { TestDaemon } from '../lab/berthd';
import { startHarness, type Harness } from '../lab/harness';
import { busyboxLayer, pushImage } from '../lab/images';
import { makeTarSync } from '../lab/tar';

let h: Harness;
let d: TestDaemon;
let profileDir: string;
let blockChmod: string;
let groupsImage: string;

// every syscall busybox's chmod may use (fchmodat2 is skipped by runc where libseccomp lacks it)
const CHMOD_SYSCALLS = ['chmod', 'fchmod', 'fchmodat', 'fchmodat2'];
const CHMOD = 'touch /tmp/f && chmod 600 /tmp/f; echo rc=$?';
// /etc/group of the groups image: alice (1000:1000) is also in staff (50) and video (44)
const GROUPS = 'root:x:0:\nnobody:x:65534:\nvideo:x:44:bob,alice\nstaff:x:50:alice\nalice:x:1000:\n';

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthsc0', subnet: '10.244.0.0/24', prefix: 'sec' });
  d = h.d;
  profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-seccomp-'));
  blockChmod = path.join(profileDir, 'block-chmod.json');
  fs.writeFileSync(
    blockChmod,
    JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: CHMOD_SYSCALLS, action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
    }),
  );
  groupsImage = (
    await pushImage(h.reg, 'groups', 'alice', {
      layers: [
        busyboxLayer({ users: true }),
        makeTarSync([
          { path: 'etc/', type: 'dir' },
          { path: 'etc/group', content: GROUPS },
        ]),
      ],
      config: { User: 'alice' },
    })
  ).reference;
  await call(d.clients.image, 'PullImage', { image: { image: groupsImage } });
});

afterAll(async () => {
  await h?.cleanup();
  if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
});

const sleeper = (name: string, sc: LinuxContainerSecurityContext, image?: string): ContainerConfig =>
  h.ctrConfig(name, ['sleep', '3600'], {
    linux: { security_context: sc },
    ...(image ? { image: { image } } : {}),
  });

async function withPod(pod: PodSandboxConfig, fn: (podId: string) => Promise<void>): Promise<void> {
  const podId = await h.runPod(pod);
  try {
    await fn(podId);
  } finally {
    await h.removePod(podId);
  }
}

const statusLine = (status: string, name: string): string =>
  new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1].trim() ?? '';

describe('seccomp Localhost profiles', () => {
  test('a profile blocking chmod makes chmod fail with EPERM; the default profile lets it through', async () => {
    const pod = h.podConfig();
    await withPod(pod, async (podId) => {
      const field = await h.startCtr(
        podId,
        pod,
        sleeper('field', { seccomp: { profile_type: 'Localhost', localhost_ref: blockChmod } }),
      );
      const deprecated = await h.startCtr(
        podId,
        pod,
        sleeper('deprecated', { seccomp_profile_path: `localhost/${blockChmod}` }),
      );
      const dflt = await h.startCtr(
        podId,
        pod,
        sleeper('default', { seccomp: { profile_type: 'RuntimeDefault' } }),
      );
      const dockerDefault = await h.startCtr(
        podId,
        pod,
        sleeper('docker-default', { seccomp_profile_path: 'docker/default' }),
      );
      const unconfined = await h.startCtr(
        podId,
        pod,
        sleeper('unconfined', { seccomp_profile_path: 'unconfined' }),
      );
      for (const id of [field, deprecated]) {
        const r = await h.exec(id, ['sh', '-c', CHMOD]);
        expect(r.err).toContain('chmod: /tmp/f: Operation not permitted');
        expect(r.out).toContain('rc=1');
        expect(statusLine((await h.exec(id, ['cat', '/proc/self/status'])).out, 'Seccomp')).toBe('2');
      }
      for (const id of [dflt, dockerDefault]) {
        const r = await h.exec(id, ['sh', '-c', `${CHMOD}; stat -c %a /tmp/f`]);
        expect(r.err).toBe('');
        expect(r.out).toBe('rc=0\n600\n');
        expect(statusLine((await h.exec(id, ['cat', '/proc/self/status'])).out, 'Seccomp')).toBe('2');
      }
      const r = await h.exec(unconfined, ['sh', '-c', CHMOD]);
      expect(r.out).toBe('rc=0\n');
      expect(statusLine((await h.exec(unconfined, ['cat', '/proc/self/status'])).out, 'Seccomp')).toBe('0');
    });
  });

  test("a pod's Localhost profile (field and deprecated path) confines the pod's infra container", async () => {
    for (const sc of [
      { seccomp: { profile_type: 'Localhost' as const, localhost_ref: blockChmod } },
      { seccomp_profile_path: `localhost/${blockChmod}` },
    ]) {
      const pod = h.podConfig({ linux: { security_context: sc } });
      await withPod(pod, async (podId) => {
        // the container shares the pod's pid namespace: its PID 1 is the infra process
        const id = await h.startCtr(podId, pod, h.ctrConfig('look', ['sleep', '3600']));
        const infra = (await h.exec(id, ['cat', '/proc/1/status'])).out;
        expect(statusLine(infra, 'Name')).toBe('pause');
        expect(statusLine(infra, 'Seccomp')).toBe('2');
        // the CRI: the sandbox's security context does not apply to the pod's containers (kubelet
        // copies the pod's profile into each container's own context)
        expect(statusLine((await h.exec(id, ['cat', '/proc/self/status'])).out, 'Seccomp')).toBe('0');
        expect((await h.exec(id, ['sh', '-c', CHMOD])).out).toBe('rc=0\n');
      });
    }
  });

  test('a missing or invalid profile is INVALID_ARGUMENT naming the path, and nothing is created', async () => {
    const missing = path.join(profileDir, 'no-such-profile.json');
    const invalid = path.join(profileDir, 'invalid.json');
    fs.writeFileSync(
      invalid,
      JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: 'chmod' }] }),
    );
    const notJson = path.join(profileDir, 'not-json.json');
    fs.writeFileSync(notJson, '{ "defaultAction": ');
    const podsBefore = (await call(d.clients.runtime, 'ListPodSandbox', {})).items.length;
    for (const [file, why] of [
      [missing, 'no such file'],
      [invalid, 'syscalls[0].names must be a list of strings'],
      [notJson, 'not valid JSON'],
    ]) {
      for (const sc of [
        { seccomp: { profile_type: 'Localhost' as const, localhost_ref: file } },
        { seccomp_profile_path: `localhost/${file}` },
      ]) {
        await expect(
          call(d.clients.runtime, 'RunPodSandbox', {
            config: h.podConfig({ linux: { security_context: sc } }),
          }),
        ).rejects.toMatchObject({
          code: Status.INVALID_ARGUMENT,
          details: expect.stringContaining(`${file}: ${why}`),
        });
      }
    }
    expect((await call(d.clients.runtime, 'ListPodSandbox', {})).items.length).toBe(podsBefore);

    const pod = h.podConfig();
    await withPod(pod, async (podId) => {
      for (const [file, why] of [
        [missing, 'no such file'],
        [invalid, 'syscalls[0].names must be a list of strings'],
      ]) {
        for (const sc of [
          { seccomp: { profile_type: 'Localhost' as const, localhost_ref: file } },
          { seccomp_profile_path: `localhost/${file}` },
        ]) {
          await expect(
            call(d.clients.runtime, 'CreateContainer', {
              pod_sandbox_id: podId,
              config: sleeper('bad', sc),
              sandbox_config: pod,
            }),
          ).rejects.toMatchObject({
            code: Status.INVALID_ARGUMENT,
            details: expect.stringContaining(`${file}: ${why}`),
          });
        }
      }
      await expect(
        call(d.clients.runtime, 'CreateContainer', {
          pod_sandbox_id: podId,
          config: sleeper('relative', { seccomp_profile_path: 'localhost/profiles/p.json' }),
          sandbox_config: pod,
        }),
      ).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
      const list = await call(d.clients.runtime, 'ListContainers', { filter: { pod_sandbox_id: podId } });
      expect(list.containers).toEqual([]);
      // the name was not reserved by the refused attempts
      const ok = await h.startCtr(podId, pod, sleeper('bad', {}));
      expect(ok).toMatch(/^[0-9a-f]{64}$/);
    });
  });
});

describe('SupplementalGroupsPolicy', () => {
  test('Status advertises the feature', async () => {
    const s = await call(d.clients.runtime, 'Status', {});
    expect(s.features?.supplemental_groups_policy).toBe(true);
  });

  async function groupsOf(policy: 'Merge' | 'Strict' | undefined): Promise<{
    id: string;
    procGroups: string[];
    user: { uid: string; gid: string; supplemental_groups: string[] } | undefined;
  }> {
    const pod = h.podConfig();
    const podId = await h.runPod(pod);
    try {
      // requested out of order: the kernel keeps them sorted, and so must the status
      const sc: LinuxContainerSecurityContext = { supplemental_groups: ['4242', '300'] };
      if (policy) sc.supplemental_groups_policy = policy;
      const ctr = await h.startCtr(podId, pod, sleeper('groups', sc, groupsImage));
      const id = (await h.exec(ctr, ['id'])).out.trim();
      const procGroups = statusLine((await h.exec(ctr, ['cat', '/proc/self/status'])).out, 'Groups')
        .split(/\s+/)
        .filter((g) => g !== '');
      const st = await call(d.clients.runtime, 'ContainerStatus', { container_id: ctr });
      const linux = st.status?.user?.linux ?? undefined;
      return {
        id,
        procGroups,
        user: linux
          ? { uid: linux.uid, gid: linux.gid, supplemental_groups: [...linux.supplemental_groups] }
          : undefined,
      };
    } finally {
      await h.removePod(podId);
    }
  }

  test("Merge (the default) keeps the image's groups of the user and adds the requested ones", async () => {
    for (const policy of [undefined, 'Merge'] as const) {
      const r = await groupsOf(policy);
      expect(r.id).toBe('uid=1000(alice) gid=1000(alice) groups=44(video),50(staff),300,1000(alice),4242');
      // ContainerStatus.user is what the process has (the kernel's sorted list), not the request
      expect(r.user).toEqual({
        uid: '1000',
        gid: '1000',
        supplemental_groups: ['44', '50', '300', '1000', '4242'],
      });
      expect(r.user?.supplemental_groups).toEqual(r.procGroups);
    }
  });

  test('in a pod user namespace the status gives the ids inside the pod, not the host ones', async () => {
    const ns = {
      userns_options: {
        mode: 'POD' as const,
        uids: [{ container_id: 0, host_id: 100000, length: 65536 }],
        gids: [{ container_id: 0, host_id: 100000, length: 65536 }],
      },
    };
    const pod = h.podConfig({ linux: { security_context: { namespace_options: ns } } });
    await withPod(pod, async (podId) => {
      const ctr = await h.startCtr(
        podId,
        pod,
        sleeper('userns', { namespace_options: ns, supplemental_groups: ['300'] }, groupsImage),
      );
      expect((await h.exec(ctr, ['id'])).out.trim()).toBe(
        'uid=1000(alice) gid=1000(alice) groups=44(video),50(staff),300,1000(alice)',
      );
      const st = await call(d.clients.runtime, 'ContainerStatus', { container_id: ctr, verbose: true });
      expect(st.status?.user?.linux).toMatchObject({
        uid: '1000',
        gid: '1000',
        supplemental_groups: ['44', '50', '300', '1000'],
      });
      // the host sees the mapped ids
      const pid = (JSON.parse(st.info.info) as { pid: number }).pid;
      const host = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(statusLine(host, 'Uid').split(/\s+/)[0]).toBe('101000');
      expect(statusLine(host, 'Groups')).toBe('100044 100050 100300 101000');
    });
  });

  test('Strict uses only the requested groups (and the primary gid)', async () => {
    const r = await groupsOf('Strict');
    expect(r.id).toBe('uid=1000(alice) gid=1000(alice) groups=300,1000(alice),4242');
    expect(r.user).toEqual({ uid: '1000', gid: '1000', supplemental_groups: ['300', '1000', '4242'] });
    expect(r.user?.supplemental_groups).toEqual(r.procGroups);
  });
});
