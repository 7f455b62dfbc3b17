/**
 * Fuzzes the SFTP packet framer and decoder (every byte an agent's sftp client sends passes
 * through them) and the bundle's tar layer: hostile bytes give the module's own error or a
 * partial decode, never another exception; well-formed input round-trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { decodePacket, MAX_PACKET, SFTP, SftpFrameError, SftpFramer } from '../../gateway/ssh/sftp-parser';
import { TarReader, TarWriter } from '../../gateway/bundle/tar';
import { BundleError } from '../../gateway/bundle/errors';
import { tempDir } from '../helpers/tmp';
import { budget, within } from './budget';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const u64 = (n: number) => Buffer.concat([u32(Math.floor(n / 0x100000000)), u32(n % 0x100000000)]);
const str = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};
const packet = (type: number, body: Buffer) => Buffer.concat([u32(body.length + 1), Buffer.from([type]), body]);

const piece = fc.oneof(
  fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)),
  fc.nat({ max: 0xffffffff }).map(u32),
  fc.constantFrom(u32(0), u32(0xffffffff), u32(MAX_PACKET), u32(1), Buffer.from([0])),
  fc.string({ maxLength: 16 }).map((s) => str(s)),
);
const body = fc.array(piece, { maxLength: 8 }).map((p) => Buffer.concat(p));
const sftpType = fc.oneof(fc.constantFrom(...Object.values(SFTP)), fc.nat(255));

test('decodePacket never throws, whatever the packet holds', () => {
  fc.assert(
    fc.property(sftpType, body, (type, b) => {
      const d = decodePacket(packet(type, b));
      assert.equal(d.type, type);
    }),
    budget(3000),
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (raw) => void decodePacket(Buffer.from(raw))), budget(1000));
});

test('the framer cuts a stream into the same packets however it is chunked; oversized lengths are its own error', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(sftpType, body), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(64), { maxLength: 20 }), (pkts, cuts) => {
      const packets = pkts.map(([t, b]) => packet(t, b));
      const stream = Buffer.concat(packets);
      const framer = new SftpFramer();
      const got: Buffer[] = [];
      let pos = 0;
      for (const c of cuts) {
        if (pos >= stream.length) break;
        got.push(...framer.push(stream.subarray(pos, pos + c)));
        pos += c;
      }
      got.push(...framer.push(stream.subarray(pos)));
      assert.deepStrictEqual(got.map((p) => Buffer.from(p)), packets);
    }),
    budget(1000),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => {
      try {
        new SftpFramer().push(Buffer.from(raw));
      } catch (err) {
        assert.ok(err instanceof SftpFrameError, `threw ${String(err)}`);
      }
    }),
    budget(1000),
  );
});

test('round trip: well-formed requests decode to the path, handle, offset and data they carry', () => {
  const name = fc.string({ maxLength: 40, unit: 'grapheme' });
  const handle = fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a));
  const id = fc.nat({ max: 0xffffffff });
  const offset = fc.nat({ max: Number.MAX_SAFE_INTEGER });
  fc.assert(
    fc.property(id, name, name, handle, offset, fc.uint8Array({ maxLength: 64 }), fc.nat({ max: 0xffffffff }), (rid, p1, p2, h, off, data, flags) => {
      const open = decodePacket(packet(SFTP.OPEN, Buffer.concat([u32(rid), str(p1), u32(flags), u32(0)])));
      assert.deepStrictEqual([open.id, open.path, open.flags], [rid, p1, flags]);
      const write = decodePacket(packet(SFTP.WRITE, Buffer.concat([u32(rid), str(h), u64(off), str(Buffer.from(data))])));
      assert.deepStrictEqual([write.handle, write.offset, write.length, Buffer.from(write.data ?? [])], [h.toString('hex'), off, data.length, Buffer.from(data)]);
      const rename = decodePacket(packet(SFTP.RENAME, Buffer.concat([u32(rid), str(p1), str(p2)])));
      assert.deepStrictEqual([rename.path, rename.path2], [p1, p2]);
    }),
    budget(1000),
  );
});

// ---------------------------------------------------------------------------------------
const work = tempDir('flightlog-fuzz-tar-');
const limits = { maxMembers: 64, maxMemberBytes: 1 << 20 };

async function readTar(file: string): Promise<Array<{ name: string; data: Buffer }>> {
  const r = await TarReader.open(file, limits);
  try {
    const out: Array<{ name: string; data: Buffer }> = [];
    for (;;) {
      const e = await r.next();
      if (!e) return out;
      out.push({ name: e.name, data: await r.readAll(e) });
    }
  } finally {
    await r.close();
  }
}

const memberName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,40}(\/[a-z0-9._-]{1,40}){0,3}$/);

test('round trip: what TarWriter writes, TarReader reads back member for member', async () => {
  let n = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(memberName, fc.uint8Array({ maxLength: 3000 })), { maxLength: 6 }), async (members) => {
      const file = path.join(work, `rt-${n++}.tar`);
      const w = await TarWriter.create(file);
      for (const [name, data] of members) await w.addBuffer(name, Buffer.from(data));
      await w.finish();
      const back = await within(5000, 'reading a tar back', readTar(file));
      assert.deepStrictEqual(back, members.map(([name, data]) => ({ name, data: Buffer.from(data) })));
      fs.rmSync(file);
    }),
    budget(20),
  );
});

test('a damaged tar gives a BundleError or its members, never another exception or a hang', async () => {
  const base = path.join(work, 'base.tar');
  const w = await TarWriter.create(base);
  await w.addBuffer('manifest.json', Buffer.from('{"format":"x"}'));
  await w.addBuffer('sessions/ses_1/events.ndjson', Buffer.alloc(1500, 0x61));
  await w.finish();
  const original = fs.readFileSync(base);
  let n = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.nat(original.length - 1), fc.nat(255)), { minLength: 1, maxLength: 6 }), fc.option(fc.nat(original.length)), async (flips, cut) => {
      const bytes = Buffer.from(original);
      for (const [pos, v] of flips) bytes[pos] = v;
      const file = path.join(work, `bad-${n++}.tar`);
      fs.writeFileSync(file, cut === null ? bytes : bytes.subarray(0, cut));
      try {
        await within(5000, 'reading a damaged tar', readTar(file));
      } catch (err) {
        assert.ok(err instanceof BundleError, `threw ${String(err)}`);
        assert.doesNotMatch(err.message, /\n/);
      } finally {
        fs.rmSync(file);
      }
    }),
    budget(300),
  );
});
