import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findReady, hookLine, MarkStripper, ShellIntegration, type ShellMarksMethod } from '../../gateway/ssh/shell-integration';
import { ShellTracker } from '../../gateway/ssh/shell-tracker';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('OSC 133 mark stripper', () => {
  it('removes marks split anywhere and passes every other byte unchanged', () => {
    const input = 'a\x1b]133;A\x07$ \x1b]133;B\x07ls\r\n\x1b]133;C\x1b\\\xff\xfe\x1b[31mred\x1b]0;title\x07\x1b]133;D;0\x07z';
    const want = 'a$ ls\r\n\xff\xfe\x1b[31mred\x1b]0;title\x07z';
    for (let cut = 0; cut <= input.length; cut++) {
      const s = new MarkStripper();
      const out = Buffer.concat([s.push(b(input.slice(0, cut))), s.push(b(input.slice(cut))), s.flush()]).toString('latin1');
      assert.equal(out, want, `cut at ${cut}`);
    }
  });

  it('lets an unterminated lookalike through instead of swallowing output', () => {
    const s = new MarkStripper();
    const text = '\x1b]133;' + 'x'.repeat(400);
    assert.equal(Buffer.concat([s.push(b(text)), s.flush()]).toString('latin1'), text);
  });
});

describe('shell hook', () => {
  it('is one line whose echo cannot pass for its reply', () => {
    const line = hookLine('abc123');
    assert.equal(line.split('\r').length, 2, 'one line, ended by Enter');
    assert.ok(line.startsWith(' '), 'leading space: out of the history');
    assert.equal(findReady(line, 'abc123'), null, 'the echo holds \\033 as text, not ESC');
    assert.deepEqual(findReady('x\x1b]133;flightlog;bash;abc123\x07rest', 'abc123'), { shell: 'bash', end: 'x\x1b]133;flightlog;bash;abc123\x07'.length });
    assert.equal(findReady('\x1b]133;flightlog;bash;other\x07', 'abc123'), null, 'another nonce');
  });

  function harness(inject = true) {
    const upstream: string[] = [];
    const live: Array<[ShellMarksMethod, string | null]> = [];
    let timer: (() => void) | null = null;
    const si = new ShellIntegration({
      inject,
      nonce: 'n0nce',
      writeUpstream: (d) => upstream.push(d.toString()),
      onLive: (m, sh) => live.push([m, sh]),
      setTimer: (_ms, fire) => (timer = _ms === null ? null : fire),
    });
    return { si, upstream, live, fire: () => timer?.() };
  }

  it('types the hook at the first prompt, hides it, holds the agent input and EOF until the reply', () => {
    const h = harness();
    const first = h.si.output(b('motd\r\nuser@h:~$ '));
    assert.equal(first.client.toString(), 'motd\r\nuser@h:~$ ', 'the login passes through');
    assert.equal(h.si.input(b('echo one\n')).length, 0, 'piped input waits for the hook');
    let ended = false;
    h.si.end(() => (ended = true));
    h.fire(); // quiet after the prompt
    assert.equal(h.upstream.length, 1);
    assert.ok(h.upstream[0].includes('n0nce'));
    const echo = h.si.output(b(h.upstream[0] + '\n'));
    assert.equal(echo.client.length + echo.record.length, 0, 'the hook echo is hidden');
    assert.equal(ended, false);
    const ready = h.si.output(b('\x1b]133;flightlog;bash;n0nce\x07\x1b]133;D;0\x07\x1b]133;A\x07user@h:~$ \x1b]133;B\x07'));
    assert.deepEqual(h.live, [['injected', 'bash']]);
    assert.equal(ready.client.toString('latin1'), '\r\x1b[Kuser@h:~$ ', 'the new prompt replaces the first, marks stripped');
    assert.ok(ready.record.toString('latin1').includes('\x1b]133;B\x07'), 'the recording keeps the marks');
    assert.deepEqual(h.upstream.slice(1), ['echo one\n'], 'held input follows the hook');
    assert.equal(ended, true, 'then the EOF');
    assert.equal(h.si.input(b('x')).toString(), 'x');
  });

  it('after the reply, holds input until the prompt is up (B mark, else quiet): no double echo', () => {
    const h = harness();
    h.si.output(b('$ '));
    h.si.input(b('ls\r'));
    h.fire();
    h.si.output(b('\x1b]133;flightlog;bash;n0nce\x07'));
    assert.equal(h.upstream.length, 1, 'the shell still runs the hook (cooked mode): ls waits');
    h.si.output(b('\x1b]133;D;0\x07\x1b]133;A\x07'));
    assert.equal(h.upstream.length, 1);
    h.si.output(b('$ \x1b]133;B\x07'));
    assert.deepEqual(h.upstream.slice(1), ['ls\r'], 'released at the prompt');
    const rebuilt = harness();
    rebuilt.si.output(b('$ '));
    rebuilt.si.input(b('ls\r'));
    rebuilt.fire();
    rebuilt.si.output(b('\x1b]133;flightlog;bash;n0nce\x07\x1b]133;A\x07my-prompt$ '));
    assert.equal(rebuilt.upstream.length, 1);
    rebuilt.fire(); // quiet: a prompt without the B mark
    assert.deepEqual(rebuilt.upstream.slice(1), ['ls\r']);
  });

  it('leaves a shell that marks its own prompts alone, and gives up on a hook with no reply', () => {
    const own = harness();
    const out = own.si.output(b('\x1b]133;A\x07$ \x1b]133;B\x07'));
    assert.deepEqual(own.live, [['shell', null]]);
    assert.equal(out.client.toString('latin1'), '\x1b]133;A\x07$ \x1b]133;B\x07', 'not stripped: the shell sent them');
    assert.equal(own.upstream.length, 0);

    const mute = harness();
    mute.si.output(b('> '));
    mute.si.input(b('ls\n'));
    mute.fire();
    const lost: Buffer[] = [];
    mute.si.lateOutput = (c) => lost.push(c);
    mute.si.output(b('fish: unknown command'));
    mute.fire(); // no reply in time
    assert.deepEqual(mute.live, [['echo', null]]);
    assert.equal(Buffer.concat(lost).toString(), 'fish: unknown command', 'what the shell said is shown, not lost');
    assert.equal(mute.upstream[mute.upstream.length - 1], 'ls\n');

    assert.ok(mute.si.typedHook?.includes('n0nce'), 'typed, though unanswered: on the record');
    const never = harness();
    never.si.input(b('ls\n'));
    never.fire(); // no prompt ever came
    assert.equal(never.si.typedHook, null);
    assert.deepEqual(never.upstream, ['ls\n']);

    const off = harness(false);
    assert.equal(off.si.input(b('ls\n')).toString(), 'ls\n');
    assert.equal(off.upstream.length, 0);
  });
});

describe('shell tracker, more', () => {
  function track() {
    const log: string[] = [];
    const t = new ShellTracker({ start: (text) => log.push(`start ${text}`), finish: (code) => log.push(`finish ${code}`) });
    return { t, log };
  }

  it('does not take the prompt into the next command after a Ctrl-C (echo mode)', () => {
    const { t, log } = track();
    t.output('PROMPT$ ');
    t.input('sleep 30\r');
    t.output('sleep 30\r\n');
    t.input('\x03');
    t.output('^C\r\nPROMPT$ ');
    t.input('echo hi\r');
    t.output('echo hi\r\nhi\r\nPROMPT$ ');
    assert.deepEqual(log, ['start sleep 30', 'finish null', 'start echo hi']);
  });

  it('with marks: a multi-line command, a prompt without a B mark, exit codes', () => {
    const { t, log } = track();
    t.output('\x1b]133;A\x07$ \x1b]133;B\x07');
    t.input('for i in 1 2\r');
    t.output('for i in 1 2\r\n> ');
    t.input('do echo $i; done\r');
    t.output('do echo $i; done\r\n\x1b]133;C\x071\r\n2\r\n\x1b]133;D;0\x07');
    // A prompt the user's PROMPT_COMMAND rebuilt, without the B mark
    t.output('\x1b]133;A\x07me@h$ ');
    t.input('false\r');
    t.output('false\r\n\x1b]133;C\x07\x1b]133;D;1\x07');
    assert.deepEqual(log, ['start for i in 1 2\n> do echo $i; done', 'finish 0', 'start false', 'finish 1']);
  });

  it('with marks: lines typed into a running command are its nested commands; keys sent ahead are not', () => {
    const log: string[] = [];
    const t = new ShellTracker({
      start: (text) => log.push(`start ${text}`),
      finish: (code) => log.push(`finish ${code}`),
      nested: (text) => log.push(`nested ${text}`),
    });
    t.output('\x1b]133;A\x07$ \x1b]133;B\x07');
    t.input('sudo -i\r');
    t.output('sudo -i\r\n\x1b]133;C\x07root@h:~# ');
    t.input('whoami\r');
    t.output('whoami\r\nroot\r\nroot@h:~# ');
    t.input('exit\r');
    t.output('exit\r\nlogout\r\n\x1b]133;D;0\x07\x1b]133;A\x07$ \x1b]133;B\x07');
    // An agent pipes everything at once: the output of `echo a` is no nested command.
    t.input('echo a\nls\n');
    t.output('echo a\r\n\x1b]133;C\x07a\r\n\x1b]133;D;0\x07\x1b]133;A\x07$ \x1b]133;B\x07ls\r\n\x1b]133;C\x07f\r\n\x1b]133;D;0\x07');
    assert.deepEqual(log, ['start sudo -i', 'nested whoami', 'nested exit', 'finish 0', 'start echo a', 'finish 0', 'start ls', 'finish 0']);
  });
});
