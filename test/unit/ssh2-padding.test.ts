import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { pooledRandomFill, ssh2CryptoModule } from '../../gateway/ssh/ssh2-padding';

describe('pooled padding for ssh2', () => {
  it('leaves the global randomFillSync alone once ssh2 is loaded', () => {
    ssh2CryptoModule();
    const real = createRequire(__filename)('node:crypto') as typeof crypto;
    assert.notEqual(real.randomFillSync, pooledRandomFill);
    assert.equal(real.randomFillSync.name, 'randomFillSync');
  });

  it('fills only the requested range, and never hands out the same bytes twice', () => {
    const seen = new Set<string>();
    // more than one pool's worth of 16-byte paddings: the refill is crossed too
    for (let i = 0; i < 10_000; i++) {
      const packet = Buffer.alloc(40, 0xaa);
      pooledRandomFill(packet, 20, 16);
      assert.ok(packet.subarray(0, 20).every((b) => b === 0xaa) && packet.subarray(36).every((b) => b === 0xaa));
      const pad = packet.subarray(20, 36).toString('hex');
      assert.ok(!seen.has(pad), `padding repeated after ${i} packets`);
      seen.add(pad);
    }
  });

  it('sends large or odd requests to the CSPRNG as before', () => {
    const big = pooledRandomFill(Buffer.alloc(4096));
    assert.ok(big.some((b) => b !== 0));
    const view = pooledRandomFill(new Uint8Array(8));
    assert.equal(view.length, 8);
    assert.throws(() => pooledRandomFill(Buffer.alloc(8), 4, 8), RangeError);
  });
});
