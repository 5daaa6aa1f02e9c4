import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Status } from '../errors';
import { loadLocalhostSeccomp, MAX_SECCOMP_PROFILE_BYTES } from './seccomp-file';

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-seccomp-file-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const PROFILE = {
  defaultAction: 'SCMP_ACT_ALLOW',
  syscalls: [{ names: ['chmod', 'fchmodat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
};

async function refused(p: Promise<unknown>, message: RegExp): Promise<void> {
  await expect(p).rejects.toMatchObject({
    code: Status.INVALID_ARGUMENT,
    message: expect.stringMatching(message),
  });
}

describe('loadLocalhostSeccomp', () => {
  it('loads and checks a profile by absolute path', async () => {
    const file = path.join(dir, 'ok.json');
    await fsp.writeFile(file, JSON.stringify(PROFILE));
    expect(await loadLocalhostSeccomp({ type: 'Localhost', localhostRef: file })).toEqual(PROFILE);
  });
  it('needs nothing for other types or a privileged container', async () => {
    expect(await loadLocalhostSeccomp(undefined)).toBeUndefined();
    expect(await loadLocalhostSeccomp({ type: 'RuntimeDefault' })).toBeUndefined();
    expect(await loadLocalhostSeccomp({ type: 'Localhost', localhostRef: '/nope' }, true)).toBeUndefined();
  });
  it('refuses what cannot be a profile, naming the whole path', async () => {
    const long = path.join(dir, 'a'.repeat(120), 'missing.json');
    await refused(
      loadLocalhostSeccomp({ type: 'Localhost', localhostRef: long }),
      new RegExp(`${long.replace(/[/.]/g, '\\$&')}: no such file`),
    );
    await refused(
      loadLocalhostSeccomp({ type: 'Localhost', localhostRef: 'rel.json' }),
      /rel\.json: not an absolute/,
    );
    await refused(loadLocalhostSeccomp({ type: 'Localhost', localhostRef: dir }), /not a regular file/);
    const bad = path.join(dir, 'bad.json');
    await fsp.writeFile(bad, '{"defaultAction": ');
    await refused(
      loadLocalhostSeccomp({ type: 'Localhost', localhostRef: bad }),
      /bad\.json: not valid JSON/,
    );
    const wrong = path.join(dir, 'wrong.json');
    await fsp.writeFile(wrong, JSON.stringify({ defaultAction: 'SCMP_ACT_MAYBE' }));
    await refused(
      loadLocalhostSeccomp({ type: 'Localhost', localhostRef: wrong }),
      /wrong\.json: invalid defaultAction/,
    );
    const big = path.join(dir, 'big.json');
    await fsp.writeFile(big, ' '.repeat(MAX_SECCOMP_PROFILE_BYTES + 1));
    await refused(
      loadLocalhostSeccomp({ type: 'Localhost', localhostRef: big }),
      /big\.json: \d+ bytes, more than/,
    );
  });
});
