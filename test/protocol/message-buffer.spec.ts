import { describe, expect, it } from '@jest/globals';
import { MessageBuffer } from '../../lib/protocol/message-buffer.js';

describe('MessageBuffer', () => {
  it('keeps a single piece as it is, without a copy', () => {
    const buffer = new MessageBuffer(1024);
    const piece = Buffer.from('hello');
    buffer.append(piece, 0, true);
    expect(buffer.size).toBe(5);
    expect(buffer.take()).toBe(piece);
    expect(buffer.size).toBe(0);
    expect(buffer.take()).toEqual(Buffer.alloc(0));
  });

  it('holds a million one-byte pieces in one buffer of at most twice their size', () => {
    const count = 1_000_000;
    const buffer = new MessageBuffer(count);
    const one = Buffer.from([0x61]);
    for (let i = 0; i < count; i++) {
      buffer.append(one, 0, false);
      // Never more than twice what it holds (1 KiB at least), and never past the message limit.
      if ((i & 0xffff) === 0) expect(buffer.bytes.length).toBeLessThanOrEqual(Math.min(count, Math.max(1024, 2 * buffer.size)));
    }
    const message = buffer.take();
    expect(message.length).toBe(count);
    expect(message.equals(Buffer.alloc(count, 0x61))).toBe(true);
  });

  it('sizes its buffer exactly from the declared rest of a final frame', () => {
    const buffer = new MessageBuffer(1 << 20);
    buffer.append(Buffer.alloc(10, 1), 1000, true);
    buffer.append(Buffer.alloc(10, 2), 990, true);
    expect(buffer.bytes.length).toBe(1010);
    buffer.append(Buffer.alloc(990, 3), 0, true);
    const message = buffer.take();
    expect(message.length).toBe(1010);
    expect([message[0], message[10], message[1009]]).toEqual([1, 2, 3]);
  });

  it('never grows past the message limit, and ignores empty pieces', () => {
    const buffer = new MessageBuffer(1500);
    buffer.append(Buffer.alloc(700), 0, false);
    buffer.append(Buffer.alloc(0), 0, false);
    buffer.append(Buffer.alloc(700), 0, false);
    expect(buffer.bytes.length).toBe(1500);
    buffer.append(Buffer.alloc(100), 0, true);
    expect(buffer.take().length).toBe(1500);
    buffer.append(Buffer.alloc(3), 0, false);
    buffer.reset();
    expect(buffer.size).toBe(0);
  });
});
