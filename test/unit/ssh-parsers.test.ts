import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ShellTracker } from '../../gateway/ssh/shell-tracker';
import { decodePacket, SFTP, SftpFramer } from '../../gateway/ssh/sftp-parser';
import { TextCoalescer } from '../../gateway/ssh/text-coalescer';
import { ScpSniffer, type ScpEntry } from '../../gateway/ssh/scp-sniffer';
import { fingerprint, parsePinnedKey } from '../../gateway/ssh/host-keys';

function track() {
  const log: string[] = [];
  const t = new ShellTracker({ start: (text, source) => log.push(`start ${source}: ${text}`), finish: (code) => log.push(`finish ${code}`) });
  return { t, log };
}

describe('shell tracker', () => {
  it('reconstructs a typed line from the echo, after line editing', () => {
    const { t, log } = track();
    t.output('root@h:~# ');
    t.input('lx');
    t.output('lx');
    t.input('\x7f');
    t.output('\b \b');
    t.input('s -la\r');
    t.output('s -la\r\ntotal 0\r\nroot@h:~# ');
    t.input('pwd\r');
    t.output('pwd\r\n/root\r\nroot@h:~# ');
    assert.deepEqual(log, ['start echo: ls -la', 'finish null', 'start echo: pwd']);
  });

  it('records nothing for input typed with echo off (a password prompt) or in a full-screen app', () => {
    const { t, log } = track();
    t.output('[sudo] password for a: ');
    t.input('hunter2\r');
    t.output('\r\n');
    t.output('\x1b[?1049h');
    t.input(':wq\r');
    t.output(':wq\r\n\x1b[?1049l');
    assert.deepEqual(log, []);
  });

  it('uses OSC 133 marks for command text and exit codes, split across chunks', () => {
    const { t, log } = track();
    t.output('\x1b]133;A\x07$ \x1b]13');
    t.output('3;B\x07');
    t.input('false\r');
    t.output('false\r\n\x1b]133;C\x07');
    t.output('\x1b]133;D;1\x07\x1b]133;A\x07$ \x1b]133;B\x07');
    t.input('true\r');
    t.output('true\r\n\x1b]133;C\x1b\\\x1b]133;D;0\x1b\\');
    assert.deepEqual(log, ['start osc133: false', 'finish 1', 'start osc133: true', 'finish 0']);
  });

  it('reports how far into an output chunk a command started', () => {
    const offsets: number[] = [];
    const t: ShellTracker = new ShellTracker({ start: () => offsets.push(t.offset), finish: () => undefined });
    t.output('$ ');
    t.input('ls\r');
    t.output('ls\r\nfile\r\n');
    assert.deepEqual(offsets, ['ls\r\n'.length]);
  });
});

describe('sftp parser', () => {
  const str = (s: string | Buffer) => {
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
    const l = Buffer.alloc(4);
    l.writeUInt32BE(b.length);
    return Buffer.concat([l, b]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const packet = (type: number, body: Buffer) => Buffer.concat([u32(body.length + 1), Buffer.from([type]), body]);

  it('frames packets split anywhere and decodes paths, handles, offsets and data', () => {
    const open = packet(SFTP.OPEN, Buffer.concat([u32(7), str('/tmp/a.txt'), u32(0x1a), u32(0)]));
    const hi = Buffer.alloc(8);
    hi.writeUInt32BE(1, 0);
    hi.writeUInt32BE(5, 4);
    const write = packet(SFTP.WRITE, Buffer.concat([u32(8), str(Buffer.from([1, 2])), hi, str('hello')]));
    const rename = packet(SFTP.EXTENDED, Buffer.concat([u32(9), str('posix-rename@openssh.com'), str('/a'), str('/b')]));
    const all = Buffer.concat([open, write, rename]);
    for (let cut = 1; cut < all.length; cut += 7) {
      const f = new SftpFramer();
      const got = [...f.push(all.subarray(0, cut)), ...f.push(all.subarray(cut))].map(decodePacket);
      assert.equal(got.length, 3);
      assert.deepEqual([got[0].type, got[0].id, got[0].path, got[0].flags], [SFTP.OPEN, 7, '/tmp/a.txt', 0x1a]);
      assert.deepEqual([got[1].handle, got[1].offset, got[1].data?.toString()], ['0102', 0x100000005, 'hello']);
      assert.deepEqual([got[2].extName, got[2].path, got[2].path2], ['posix-rename@openssh.com', '/a', '/b']);
    }
  });

  it('refuses an absurd packet length instead of buffering it', () => {
    assert.throws(() => new SftpFramer().push(u32(0x7fffffff)), /exceeds/);
  });
});

describe('text coalescer', () => {
  it('never cuts a word (a token) in two, even when it arrives one byte at a time', async () => {
    const out: string[] = [];
    const c = new TextCoalescer((t) => out.push(t), { idleMs: 5, holdMs: 200 });
    for (const ch of 'export KEY=abcdef123456 next') {
      c.push(Buffer.from(ch));
      await new Promise((r) => setTimeout(r, 8));
    }
    c.flush();
    assert.equal(out.join(''), 'export KEY=abcdef123456 next');
    assert.ok(out.some((t) => t.includes('KEY=abcdef123456')), JSON.stringify(out));
  });

  it('keeps multi-byte characters whole across chunks', () => {
    const out: string[] = [];
    const c = new TextCoalescer((t) => out.push(t));
    const euro = Buffer.from('€ ');
    c.push(euro.subarray(0, 1));
    c.push(euro.subarray(1));
    c.flush();
    assert.equal(out.join(''), '€ ');
  });
});

describe('scp sniffer', () => {
  it('names each file and skips its bytes', () => {
    const got: ScpEntry[] = [];
    const s = new ScpSniffer((e) => got.push(e));
    const stream = Buffer.concat([Buffer.from('D0755 0 dir\nC0644 5 a.txt\n'), Buffer.from('C0644 \n\0'), Buffer.from('C0600 0 b.bin\n\0E\n')]);
    s.push(stream.subarray(0, 20));
    s.push(stream.subarray(20));
    assert.deepEqual(got.map((e) => [e.kind, e.name, e.size]), [['dir', 'dir', 0], ['file', 'a.txt', 5], ['file', 'b.bin', 0]]);
  });
});

describe('host keys', () => {
  it('fingerprints like OpenSSH and parses the pinned form', () => {
    const blob = parsePinnedKey('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test');
    assert.ok(blob);
    assert.match(fingerprint(blob), /^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});
