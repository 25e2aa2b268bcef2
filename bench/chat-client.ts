/**
 * A client of the bench's chat app (bench/room-targets.ts) for the room workloads (bench/room-workloads.ts): a member
 * of the room, or the publisher, over the load client's raw WebSocket (bench/wire.ts).
 *
 * Every chat text starts with `#` and a 7-digit sequence number, read back from the first bytes of each delivered
 * payload: a member that gets a message twice, misses one or gets them out of order reports it.
 *
 * Targets speak one of two dialects: Nest's JSON events (`{"event":"chat","data":{...}}`), or Socket.IO v5 over
 * Engine.IO v4 (`?EIO=4&transport=websocket`: the server opens with `0{...}`, the client connects to the namespace
 * with `40` and sends events as `42["chat",{...}]`; pings `2` are answered with `3`). The raw client costs every
 * target the same few instructions per frame; socket.io-client would decode every packet into objects and emit
 * events, on the same two cores as the server under test.
 */
import { FrameCounter, OP_TEXT, buildFrameBlock, handshakeRequest, openSocket, type ClientSocket } from './wire.js';

/** Where a target listens and how it speaks. */
export interface ChatTarget {
  readonly port: number;
  readonly socketIo: boolean;
}

const ROOM = 'bench';
const SEQ_DIGITS = 7;
const HASH = 0x23;
const DIGIT_0 = 0x30;
const OPEN_BRACE = 0x7b;
const CHAT = Buffer.from('"chat"');
const JOINED = Buffer.from('"joined"');
/** How long a client may take to connect and join before the round fails. */
const READY_MS = 60_000;
/** Engine.IO v4 packets the clients handle themselves: ping (answered with pong) and open (answered with connect). */
const EIO_PING = 0x32;
const EIO_PONG = '3';
const EIO_OPEN = 0x30;
const SIO_CONNECT = '40';
const SIO_CONNECT_BYTES = Buffer.from(SIO_CONNECT);

/** One masked text frame. */
function textFrame(text: string): Buffer {
  return buildFrameBlock(OP_TEXT, Buffer.from(text), 1).block;
}

/** An event in the target's dialect. */
function eventText(socketIo: boolean, event: string, data: unknown): string {
  return socketIo ? `42${JSON.stringify([event, data])}` : JSON.stringify({ event, data });
}

/** The text of chat message `seq`: `#` and the number, then filler, so that Nest's `chat` event is `size` bytes. */
function chatText(seq: number, size: number): string {
  const envelope = JSON.stringify({ event: 'chat', data: { room: ROOM, text: '' } }).length;
  const head = `#${String(seq).padStart(SEQ_DIGITS, '0')} `;
  const filler = 'typing in the lobby, see you at the standup '.repeat(Math.ceil(size / 40));
  return head + filler.slice(0, Math.max(0, size - envelope - head.length));
}

/** The sequence number in a chat payload's first bytes, or -1 when it carries none. */
function sequenceIn(prefix: Buffer): number {
  const at = prefix.indexOf(HASH);
  if (at < 0 || at + 1 + SEQ_DIGITS > prefix.length) return -1;
  let seq = 0;
  for (let i = at + 1; i <= at + SEQ_DIGITS; i++) seq = seq * 10 + prefix[i]! - DIGIT_0;
  return seq;
}

/** What a client reports to its job. */
export interface Hooks {
  /** A chat message arrived in sequence. */
  chat(): void;
  /** Something went wrong that fails the round: a message out of sequence, or the server closed the connection. */
  failed(reason: string): void;
}

/**
 * One client of the chat app: a member of the room, or the publisher (which never joins). It answers Engine.IO pings
 * and checks that chat messages arrive in sequence, exactly once.
 */
export class ChatClient {
  /** Chat messages received, in sequence. */
  received = 0;
  /** The first message that was not the one due (out of sequence, or not a chat message), or null. */
  error: string | null = null;
  /** Whether the TCP connection has closed, and the socket error that closed it, if any. */
  closed = false;
  socketError: Error | null = null;
  readonly counter: FrameCounter;
  readonly #client: ClientSocket;
  readonly #socketIo: boolean;
  readonly #join: boolean;
  readonly #hooks: Hooks;
  #ready: (() => void) | null = null;
  #joining: boolean;
  #closing = false;

  private constructor(client: ClientSocket, socketIo: boolean, join: boolean, hooks: Hooks) {
    this.#client = client;
    this.#socketIo = socketIo;
    this.#join = join;
    this.#joining = join;
    this.#hooks = hooks;
    this.counter = new FrameCounter(false, (prefix) => this.#message(prefix));
    const socket = client.socket;
    socket.on('data', (chunk: Buffer) => this.counter.push(chunk));
    socket.on('error', (error: Error) => (this.socketError = error));
    socket.on('close', () => {
      this.closed = true;
      if (!this.#closing) this.#hooks.failed(`the server closed a ${this.#join ? 'member' : 'publisher'} (${this.#how()})`);
    });
  }

  /** Connects, handshakes, and (for a member) joins the room; resolves once the server has answered `joined`. */
  static async open(job: ChatTarget, join: boolean, hooks: Hooks): Promise<ChatClient> {
    const path = job.socketIo ? '/ws/?EIO=4&transport=websocket' : '/ws';
    const client = await openSocket(job.port, handshakeRequest(job.port, path, null));
    const member = new ChatClient(client, job.socketIo, join, hooks);
    const ready = new Promise<void>((resolve) => (member.#ready = resolve));
    // Nest needs nothing before the first event; Socket.IO waits for the server's open packet (handled below).
    if (!job.socketIo) member.#start();
    if (client.head.length > 0) member.counter.push(client.head);
    client.socket.resume();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`a ${join ? 'member' : 'publisher'} was not ready within ${READY_MS / 1000} s (${member.error ?? member.#how()})`)), READY_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    return member;
  }

  get socket(): ClientSocket['socket'] {
    return this.#client.socket;
  }

  /** Writes one event in the target's dialect. */
  write(event: string, data: unknown): void {
    this.socket.write(textFrame(eventText(this.#socketIo, event, data)));
  }

  /** Ends the connection without it counting as a failure. */
  close(): void {
    this.#closing = true;
    this.socket.destroy();
  }

  /** How the connection looks now: its close code, or open. */
  #how(): string {
    if (this.counter.closeCode !== null) return `close ${this.counter.closeCode}`;
    if (this.closed) return this.socketError === null ? 'EOF without close' : 'reset';
    return 'open';
  }

  /** Connected (Nest at once, Socket.IO after `40`): join, or be ready. */
  #start(): void {
    if (this.#join) this.write('join', ROOM);
    else this.#done();
  }

  #done(): void {
    this.#ready?.();
    this.#ready = null;
  }

  #fail(reason: string): void {
    this.error ??= reason;
    this.#hooks.failed(reason);
  }

  #message(prefix: Buffer): void {
    if (this.#socketIo) {
      if (prefix.length === 1 && prefix[0] === EIO_PING) {
        this.socket.write(textFrame(EIO_PONG));
        return;
      }
      if (prefix.length > 1 && prefix[0] === EIO_OPEN && prefix[1] === OPEN_BRACE) {
        this.socket.write(textFrame(SIO_CONNECT));
        return;
      }
      if (this.#ready !== null && prefix.subarray(0, 2).equals(SIO_CONNECT_BYTES)) {
        this.#start();
        return;
      }
    }
    if (this.#joining && prefix.includes(JOINED)) {
      this.#joining = false;
      this.#done();
      return;
    }
    const seq = sequenceIn(prefix);
    if (seq < 0 || !prefix.includes(CHAT)) {
      this.#fail(`unexpected message ${JSON.stringify(prefix.toString())}`);
      return;
    }
    if (seq !== this.received) {
      this.#fail(`message #${seq} arrived where #${this.received} was due (a duplicate, a gap or a reordering)`);
      return;
    }
    this.received++;
    this.#hooks.chat();
  }
}

/** The masked frames of chat messages `from` to `to - 1`, end to end (one write sends them at once). */
export function chatFrames(job: ChatTarget & { readonly size: number }, from: number, to: number): Buffer {
  const frames: Buffer[] = [];
  for (let seq = from; seq < to; seq++) frames.push(textFrame(eventText(job.socketIo, 'chat', { room: ROOM, text: chatText(seq, job.size) })));
  return Buffer.concat(frames);
}

