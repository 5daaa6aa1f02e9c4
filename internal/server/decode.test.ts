// The strict request deserializers: malformed bytes become a DecodeFailure (INVALID_ARGUMENT),
// well-formed ones (unknown fields included) decode as before.
import * as protobuf from 'protobufjs';
import { loadCri, protoPath } from '../../api/proto';
import { checkWire, DecodeFailure, strictService } from './decode';

const root = new protobuf.Root().loadSync(protoPath(), { keepCase: true });
root.resolveAll();
const execSyncType = root.lookupType('runtime.v1.ExecSyncRequest');
const podConfigType = root.lookupType('runtime.v1.RunPodSandboxRequest');
const runtime = strictService(loadCri().runtime.v1.RuntimeService.service);
const image = strictService(loadCri().runtime.v1.ImageService.service);

function decodeExecSync(b: Buffer): unknown {
  return runtime.ExecSync.requestDeserialize(b);
}

test('well-formed requests decode as before, unknown fields included', () => {
  const b = Buffer.from(execSyncType.encode({ container_id: 'abc', cmd: ['ls', '-l'], timeout: 5 }).finish());
  expect(decodeExecSync(b)).toEqual({ container_id: 'abc', cmd: ['ls', '-l'], timeout: '5' });
  // field 99 (varint) and field 98 (bytes), unknown to this version of the proto
  const withUnknown = Buffer.concat([b, Buffer.from([0x98, 0x06, 0x01, 0x92, 0x06, 0x01, 0x41])]);
  expect(decodeExecSync(withUnknown)).toEqual({ container_id: 'abc', cmd: ['ls', '-l'], timeout: '5' });
  const pod = Buffer.from(
    podConfigType
      .encode({
        config: {
          metadata: { name: 'p', uid: 'u' },
          labels: { a: 'b' },
          port_mappings: [{ container_port: 80 }],
        },
      })
      .finish(),
  );
  expect(() => checkWire(podConfigType, pod)).not.toThrow();
  expect(runtime.RunPodSandbox.requestDeserialize(pod)).not.toBeInstanceOf(DecodeFailure);
  expect(runtime.Version.requestDeserialize(Buffer.alloc(0))).toEqual({ version: '' });
});

test.each([
  ['garbage', Buffer.from('garbage!!'), /invalid wire type 7/],
  ['truncated string', Buffer.from([0x0a, 0x10, 0x41]), /runs past the end/],
  ['wrong wire type', Buffer.from([0x08, 0x05]), /container_id \(string\) has wire type 0, expected 2/],
  ['truncated varint', Buffer.from([0x18, 0xff]), /truncated varint/],
  ['invalid UTF-8', Buffer.from([0x0a, 0x02, 0xc3, 0x28]), /container_id: not valid UTF-8/],
  ['field number 0', Buffer.from([0x00, 0x01]), /field number 0/],
])('%s is a DecodeFailure naming ExecSyncRequest', (_name, bytes, why) => {
  const r = decodeExecSync(bytes);
  expect(r).toBeInstanceOf(DecodeFailure);
  expect((r as unknown as DecodeFailure).message).toMatch(/^cannot decode ExecSyncRequest: /);
  expect((r as unknown as DecodeFailure).message).toMatch(why);
});

test('nested messages and map entries are checked too', () => {
  // RunPodSandboxRequest.config (2... field 1) containing labels (field 6) whose value has wire type 0
  const entry = Buffer.from([0x0a, 0x01, 0x61, 0x10, 0x01]);
  const labels = Buffer.concat([Buffer.from([0x32, entry.length]), entry]);
  const req = Buffer.concat([Buffer.from([0x0a, labels.length]), labels]);
  const r = runtime.RunPodSandbox.requestDeserialize(req);
  expect(r).toBeInstanceOf(DecodeFailure);
  expect((r as unknown as DecodeFailure).message).toMatch(
    /cannot decode RunPodSandboxRequest: map config\.labels/,
  );
});

test('every method of both services is wrapped', () => {
  for (const svc of [runtime, image]) {
    for (const [name, m] of Object.entries(svc)) {
      const r = m.requestDeserialize(Buffer.from([0xff, 0xff, 0xff]));
      expect([name, r instanceof DecodeFailure]).toEqual([name, true]);
    }
  }
});
