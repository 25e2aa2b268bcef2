/**
 * Byte-level interoperability with `ws` (a dev dependency): frames built by ws's Sender parse here, and frames we
 * write parse in ws's Receiver, with and without masking.
 */
import { describe, it, expect } from '@jest/globals';
import { createRequire } from 'node:module';
import { Connection, SEND_EOF, type ConnectionEvent } from '../../lib/protocol/connection.js';
import { Opcode } from '../../lib/protocol/frame.js';

interface WsFrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}
interface WsReceiver {
  write(chunk: Buffer): boolean;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  on(event: 'conclude', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
}
/** ws 8's Sender and Receiver, loaded from ws's own files: @types/ws does not declare them. */
const require = createRequire(import.meta.url);
const { Sender, Receiver } = require('ws') as {
  Sender: { frame(data: Buffer, options: WsFrameOptions): Buffer[] };
  Receiver: new (options: { isServer: boolean; maxPayload?: number }) => WsReceiver;
};

type WsEvent = ['message', string | Buffer] | ['ping' | 'pong', Buffer] | ['conclude', number, string] | ['error', string];

function wsReceive(isServer: boolean, buffers: Buffer[]): WsEvent[] {
  const receiver = new Receiver({ isServer, maxPayload: 0 });
  const events: WsEvent[] = [];
  receiver.on('message', (data, isBinary) => events.push(['message', isBinary ? Buffer.from(data) : data.toString()]));
  receiver.on('ping', (data) => events.push(['ping', Buffer.from(data)]));
  receiver.on('pong', (data) => events.push(['pong', Buffer.from(data)]));
  receiver.on('conclude', (code, reason) => events.push(['conclude', code, reason.toString()]));
  receiver.on('error', (error) => events.push(['error', error.message]));
  for (const buffer of buffers) receiver.write(buffer);
  return events;
}

function wsFrame(opcode: number, data: Buffer, mask: boolean, fin = true): Buffer[] {
  return Sender.frame(data, { fin, opcode, mask, readOnly: true, rsv1: false });
}

const SIZES = [0, 1, 125, 126, 65535, 65536, 200_000];
const payload = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 13) & 255));

describe('interop with ws', () => {
  for (const side of ['server', 'client'] as const) {
    const masked = side === 'server'; // a server receives masked frames
    it(`parses frames built by ws's Sender (${side}, ${masked ? 'masked' : 'unmasked'})`, () => {
      const conn = new Connection({ side, maxMessageSize: 1 << 20 });
      const expected: ConnectionEvent[] = [];
      for (const n of SIZES) {
        for (const buffer of wsFrame(Opcode.BINARY, payload(n), masked)) conn.receiveData(Buffer.from(buffer));
        expected.push({ type: 'binary', data: payload(n) });
      }
      const text = 'héllo wörld 😀'.repeat(20);
      const bytes = Buffer.from(text);
      for (const buffer of [
        ...wsFrame(Opcode.TEXT, bytes.subarray(0, 7), masked, false),
        ...wsFrame(Opcode.PING, Buffer.from('hi'), masked),
        ...wsFrame(Opcode.CONTINUATION, bytes.subarray(7), masked),
        ...wsFrame(Opcode.PONG, Buffer.alloc(0), masked),
        ...wsFrame(Opcode.CLOSE, Buffer.from([0x0f, 0xa0, 0x62, 0x79, 0x65]), masked),
      ]) {
        conn.receiveData(Buffer.from(buffer));
      }
      expected.push({ type: 'ping', data: Buffer.from('hi') }, { type: 'text', data: text }, { type: 'pong', data: Buffer.alloc(0) });
      expected.push({ type: 'close', code: 4000, reason: 'bye' });
      expect(conn.eventsReceived()).toEqual(expected);
      expect(conn.failure).toBeNull();
    });

    it(`writes frames that ws's Receiver parses (${side}, ${masked ? 'unmasked' : 'masked'})`, () => {
      const conn = new Connection({ side, maxMessageSize: 1 << 20 });
      const expected: WsEvent[] = [];
      for (const n of SIZES) {
        conn.sendBinary(payload(n));
        expected.push(['message', payload(n)]);
      }
      conn.sendText('héllo 😀');
      conn.sendPing(Buffer.from('p'));
      conn.sendPong();
      conn.sendClose(1000, 'done');
      expected.push(['message', 'héllo 😀'], ['ping', Buffer.from('p')], ['pong', Buffer.alloc(0)], ['conclude', 1000, 'done']);
      const out = conn.dataToSend().filter((b): b is Buffer => b !== SEND_EOF);
      // ws's receiver is a server when our connection is a client.
      expect(wsReceive(side === 'client', out)).toEqual(expected);
    });
  }

  it('refuses a masked frame from ws when acting as a client', () => {
    const conn = new Connection({ side: 'client', maxMessageSize: 1024 });
    conn.receiveData(Buffer.concat(wsFrame(Opcode.TEXT, Buffer.from('x'), true)));
    expect(conn.eventsReceived()).toEqual([]);
    expect(conn.closeSent?.code).toBe(1002);
  });
});
