/**
 * The load client: a process of its own, started by `bench/run.ts` with an IPC channel. It receives one job, runs
 * it against one target and reports back. Timing marks go to the parent as they happen, so that the parent reads
 * the server's CPU time from /proc over exactly the same window.
 *
 * Messages to the parent: `{ type: 'mark', phase: 'start' | 'end' }`, `{ type: 'warm' }` (ready for a baseline),
 * `{ type: 'opened', ... }` (connections are open and idle), `{ type: 'measured' }` (the slow consumer's load is over:
 * read the peak), `{ type: 'result', ... }`, `{ type: 'error', message }`.
 * Messages from the parent: `{ cmd: 'go' }` after a baseline, `{ cmd: 'finish' }` after the measurement.
 *
 * The room workloads (`fanout`, `slow-consumer`) live in bench/room-workloads.ts.
 */
import { readFileSync } from 'node:fs';
import { fanout, slowConsumer } from './room-workloads.js';
import { CLOSE_FRAME, FrameCounter, OP_BINARY, OP_TEXT, buildFrameBlock, deflateMessage, handshakeRequest, inflateMessage, openSocket, type ClientSocket } from './wire.js';

/** What the parent asks for. */
export interface ClientJob {
  readonly kind: 'echo' | 'handshake' | 'idle' | 'deflate-memory' | 'bomb' | 'fanout' | 'slow-consumer';
  readonly port: number;
  readonly path: string;
  /** Raw TCP target: no handshake, the frames are echoed as sent. */
  readonly raw: boolean;
  /** Wrap text payloads as the Nest echo event `{"event":"echo","data":"..."}`. */
  readonly nestJson: boolean;
  /** The target speaks Socket.IO v5 over Engine.IO v4 (room workloads and echo). */
  readonly socketIo: boolean;
  /** The target serves wss with this certificate (a PEM file), which the client trusts; null for ws. */
  readonly tlsCa: string | null;
  readonly connections: number;
  readonly inFlight: number;
  readonly size: number;
  readonly binary: boolean;
  /** Offer permessage-deflate and send compressed frames when it is accepted. */
  readonly compress: boolean;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Parallel connect-handshake-close loops (handshake workload). */
  readonly concurrency: number;
  /** Connections opened at once while building up the idle set. */
  readonly batch: number;
  /** How long to wait for the server's answer to each bomb, in ms. */
  readonly answerTimeoutMs: number;
  /** Room workloads: members of the room (the slow consumer's stuck member is one more). */
  readonly members: number;
  /** Room workloads: chat messages published and measured, after `warmupMessages` that are not measured. */
  readonly messages: number;
  readonly warmupMessages: number;
  /** Fan-out: measured bursts of `messages` per round (the figure is the median burst). */
  readonly bursts: number;
  /** Slow consumer: messages per burst, and how many messages a healthy member may lag before the next burst. */
  readonly burst: number;
  readonly maxBehind: number;
}

/** A parent's command. */
interface Command {
  readonly cmd: 'go' | 'finish';
}

/** Frames per prebuilt block: enough different masking keys that consecutive messages do not repeat one. */
const SMALL_BLOCK_FRAMES = 1024;
const LARGE_BLOCK_FRAMES = 4;
/** Bytes of zeros in one compression bomb (16 MiB), which deflate to about 16 KiB. */
const BOMB_SIZE = 16 * 1024 * 1024;
/** Warm-up connections opened before a memory baseline, so that lazily compiled code is in the baseline. */
const WARM_CONNECTIONS = 10;

function send(message: object): void {
  process.send!(message);
}

function nextCommand(): Promise<Command> {
  return new Promise((resolve) => process.once('message', (message: Command) => resolve(message)));
}

const PARENT = { send, next: nextCommand };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A deterministic, JSON-like text of `size` bytes (compresses about as well as real application messages). */
function sampleText(size: number): string {
  const words = ['user', 'room', 'message', 'status', 'online', 'typing', 'alpha', 'beta', 'gamma', 'delta', 'true', 'false', 'null', 'id', 'at'];
  let seed = 12345;
  let text = '';
  while (text.length < size) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    text += `${words[seed % words.length]}-${seed % 997} `;
  }
  return text.slice(0, size);
}

/** The payload of one message of `size` bytes, as the target expects it. */
function payloadFor(job: ClientJob): Buffer {
  if (job.binary) return Buffer.alloc(job.size, 0xab);
  if (job.socketIo) {
    // Socket.IO's event packet: `42["echo","..."]`, which the gateway's WsResponse sends back as it came.
    const envelope = '42["echo",""]';
    return Buffer.from(`42["echo","${sampleText(Math.max(1, job.size - envelope.length))}"]`);
  }
  if (!job.nestJson) return Buffer.from(sampleText(job.size));
  const envelope = '{"event":"echo","data":""}';
  return Buffer.from(`{"event":"echo","data":"${sampleText(Math.max(1, job.size - envelope.length))}"}`);
}

function extensionsOffer(job: ClientJob): string | null {
  if (!job.compress) return null;
  // The echo workload sends the same compressed frames again and again, which is only valid without client context
  // takeover; the memory workloads offer what browsers offer.
  return job.kind === 'echo' ? 'permessage-deflate; client_no_context_takeover; client_max_window_bits' : 'permessage-deflate; client_max_window_bits';
}

function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** What a load mode's counters did over the measured window. */
interface Window<K extends string> {
  /** How much each counter grew between the start and end marks. */
  readonly grown: Record<K, number>;
  /** Length of the window by the client's clock. */
  readonly seconds: number;
  /** The client's own CPU over the window, in % of one core. */
  readonly clientCpuPercent: number;
}

/**
 * The measured window of the rate workloads (echo, handshake): let the load run for `warmupMs`, read the counters,
 * the client's CPU and the clock, mark the start (the parent reads the server's CPU then), let it run for
 * `durationMs`, read them again and mark the end. The load keeps running after the end mark: the caller stops it.
 */
async function measuredWindow<K extends string>(job: ClientJob, counters: () => Record<K, number>): Promise<Window<K>> {
  await sleep(job.warmupMs);
  const start = counters();
  const startCpu = cpuMs();
  const startTime = performance.now();
  send({ type: 'mark', phase: 'start' });
  await sleep(job.durationMs);
  const seconds = (performance.now() - startTime) / 1000;
  const end = counters();
  const clientCpuPercent = (cpuMs() - startCpu) / 10 / seconds;
  send({ type: 'mark', phase: 'end' });
  const grown = {} as Record<K, number>;
  for (const key of Object.keys(end) as K[]) grown[key] = end[key] - start[key];
  return { grown, seconds, clientCpuPercent };
}

/** The certificate a wss target serves, read once per job; undefined for ws. */
function trusted(job: ClientJob): Buffer | undefined {
  return job.tlsCa === null ? undefined : readFileSync(job.tlsCa);
}

async function openMany(job: ClientJob, count: number, request: Buffer | null): Promise<{ sockets: ClientSocket[]; failed: number; firstError: string }> {
  const ca = trusted(job);
  const sockets: ClientSocket[] = [];
  let failed = 0;
  let firstError = '';
  for (let opened = 0; opened < count; ) {
    const n = Math.min(job.batch, count - opened);
    const results = await Promise.allSettled(Array.from({ length: n }, () => (job.socketIo ? openSocketIo(job.port, request!) : openSocket(job.port, request, ca))));
    for (const result of results) {
      if (result.status === 'fulfilled') sockets.push(result.value);
      else {
        failed++;
        if (firstError === '') firstError = String(result.reason);
      }
    }
    opened += n;
  }
  return { sockets, failed, firstError };
}

/** Engine.IO's open packet (`0{...}`) and Socket.IO's connect packet (`40`, answered with `40{...}`). */
const EIO_OPEN = 0x30;
const SIO_CONNECT = '40';

/**
 * Opens a Socket.IO connection as socket.io-client does over a WebSocket: the handshake, the server's open packet,
 * then a connect to the main namespace, answered before any event may be sent. The server sends nothing more until
 * the client does, so no bytes are left over.
 */
async function openSocketIo(port: number, request: Buffer): Promise<ClientSocket> {
  const client = await openSocket(port, request);
  const socket = client.socket;
  await new Promise<void>((resolve, reject) => {
    let step = 0;
    const counter = new FrameCounter(false, (prefix) => {
      if (step === 0 && prefix[0] === EIO_OPEN) {
        step = 1;
        socket.write(buildFrameBlock(OP_TEXT, Buffer.from(SIO_CONNECT), 1).block);
      } else if (step === 1 && prefix.subarray(0, 2).toString('latin1') === SIO_CONNECT) {
        socket.removeListener('data', onData);
        socket.removeListener('close', onClose);
        socket.pause();
        resolve();
      } else {
        reject(new Error(`unexpected Socket.IO packet ${JSON.stringify(prefix.toString('latin1'))}`));
      }
    });
    const onData = (chunk: Buffer): void => void counter.push(chunk);
    const onClose = (): void => reject(new Error('the Socket.IO server closed the connection while connecting'));
    socket.on('data', onData);
    socket.on('close', onClose);
    if (client.head.length > 0) counter.push(client.head);
    socket.resume();
  });
  return { socket, head: Buffer.alloc(0), deflate: false };
}

/** The request path of a target: Socket.IO's carries the Engine.IO version and transport. */
function requestPath(job: ClientJob): string {
  return job.socketIo ? `${job.path}/?EIO=4&transport=websocket` : job.path;
}

/** Echo: `connections` x `inFlight` messages outstanding; each reply is answered with the next prebuilt frame. */
async function echo(job: ClientJob): Promise<object> {
  const request = job.raw ? null : handshakeRequest(job.port, requestPath(job), extensionsOffer(job));
  const { sockets, failed, firstError } = await openMany(job, job.connections, request);
  if (failed > 0) throw new Error(`${failed} connections failed: ${firstError}`);
  const payload = payloadFor(job);
  const plain = buildFrameBlock(job.binary ? OP_BINARY : OP_TEXT, payload, job.size >= 65_536 ? LARGE_BLOCK_FRAMES : SMALL_BLOCK_FRAMES);
  const compressed = job.compress ? buildFrameBlock(job.binary ? OP_BINARY : OP_TEXT, deflateMessage(payload), SMALL_BLOCK_FRAMES, true) : null;
  let replies = 0;
  let replyBytes = 0;
  let negotiated = 0;
  const counters: FrameCounter[] = [];
  for (const [index, client] of sockets.entries()) {
    const { block, frameLength } = client.deflate && compressed !== null ? compressed : plain;
    if (client.deflate) negotiated++;
    const frames = block.length / frameLength;
    // Start each connection at a different place in the block, so connections do not share masking keys.
    let position = (index * 7) % frames;
    // Each connection keeps its first reply, checked against the message sent once the measurement is over.
    const counter = new FrameCounter(true);
    counters.push(counter);
    const socket = client.socket;
    const write = (k: number): void => {
      if (position + k > frames) position = 0;
      socket.write(block.subarray(position * frameLength, (position + k) * frameLength));
      position += k;
    };
    socket.on('data', (chunk: Buffer) => {
      const before = counter.payloadBytes;
      const k = counter.push(chunk);
      replyBytes += counter.payloadBytes - before;
      if (k > 0) {
        replies += k;
        write(k);
      }
    });
    socket.on('error', () => undefined);
    if (client.head.length > 0) socket.emit('data', client.head);
    socket.resume();
    write(job.inFlight);
  }
  const { seconds, clientCpuPercent, grown } = await measuredWindow(job, () => ({ replies, replyBytes }));
  for (const client of sockets) client.socket.destroy();
  const verified = verifyEchoes(counters, payload);
  return { messagesPerSecond: grown.replies / seconds, bytesPerSecond: grown.replyBytes / seconds, seconds, clientCpuPercent, negotiated, verified };
}

/**
 * How many connections echoed their first message exactly as sent (inflated first when the reply was compressed);
 * a connection that never answered is not counted.
 * @throws Error when a reply differs from the message: a server that echoes wrong bytes is not measured
 */
function verifyEchoes(counters: readonly FrameCounter[], payload: Buffer): number {
  let verified = 0;
  for (const counter of counters) {
    if (counter.first === null) continue;
    const reply = counter.firstCompressed ? inflateMessage(counter.first) : counter.first;
    if (!reply.equals(payload)) throw new Error(`an echo differs from the message sent (${reply.length} bytes back for ${payload.length})`);
    verified++;
  }
  return verified;
}

/** One connection: open, send a close frame, wait for the server's close frame and the end of the stream. */
async function handshakeOnce(port: number, request: Buffer, ca: Buffer | undefined): Promise<boolean> {
  const { socket, head } = await openSocket(port, request, ca);
  return new Promise((resolve) => {
    const counter = new FrameCounter();
    socket.on('data', (chunk: Buffer) => counter.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(counter.closeCode !== null));
    if (head.length > 0) counter.push(head);
    socket.resume();
    socket.write(CLOSE_FRAME);
  });
}

/** Handshake rate: `concurrency` loops of open, closing handshake, repeat. */
async function handshakes(job: ClientJob): Promise<object> {
  const request = handshakeRequest(job.port, job.path, null);
  const ca = trusted(job);
  let completed = 0;
  let failures = 0;
  let firstError = '';
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        if (await handshakeOnce(job.port, request, ca)) completed++;
        else failures++;
      } catch (error) {
        failures++;
        if (firstError === '') firstError = String(error);
      }
    }
  };
  const loops = Array.from({ length: job.concurrency }, loop);
  const { seconds, clientCpuPercent, grown } = await measuredWindow(job, () => ({ completed, failures }));
  running = false;
  await Promise.all(loops);
  return { handshakesPerSecond: grown.completed / seconds, failed: grown.failures, firstError, seconds, clientCpuPercent };
}

/** Sends one message on each socket and waits for every reply. */
async function exchangeOne(sockets: ClientSocket[], frame: { block: Buffer; frameLength: number }, compressedFrame: Buffer | null): Promise<number> {
  let answered = 0;
  await Promise.all(
    sockets.map(
      (client) =>
        new Promise<void>((resolve) => {
          const counter = new FrameCounter();
          const socket = client.socket;
          const onData = (chunk: Buffer): void => {
            if (counter.push(chunk) > 0) {
              answered++;
              done();
            }
          };
          const done = (): void => {
            socket.removeListener('data', onData);
            socket.removeListener('close', done);
            socket.pause();
            resolve();
          };
          socket.on('data', onData);
          socket.on('close', done);
          socket.on('error', () => undefined);
          if (client.head.length > 0) onData(client.head);
          socket.resume();
          socket.write(client.deflate && compressedFrame !== null ? compressedFrame : frame.block.subarray(0, frame.frameLength));
        }),
    ),
  );
  return answered;
}

/**
 * Memory per connection: warm up, let the parent take a baseline, open `connections` (and for `deflate-memory`
 * send one message on each and wait for its echo), let the parent measure, then close everything.
 */
async function memory(job: ClientJob): Promise<object> {
  const request = handshakeRequest(job.port, job.path, extensionsOffer(job));
  const payload = payloadFor(job);
  const frame = buildFrameBlock(OP_TEXT, payload, 1);
  const compressedFrame = job.compress ? buildFrameBlock(OP_TEXT, deflateMessage(payload), 1, true).block : null;
  const warm = await openMany(job, WARM_CONNECTIONS, request);
  await exchangeOne(warm.sockets, frame, compressedFrame);
  send({ type: 'warm' });
  await nextCommand();
  const { sockets, failed, firstError } = await openMany(job, job.connections, request);
  let answered = 0;
  if (job.kind === 'deflate-memory') {
    for (let i = 0; i < sockets.length; i += job.batch) answered += await exchangeOne(sockets.slice(i, i + job.batch), frame, compressedFrame);
  }
  const negotiated = sockets.filter((client) => client.deflate).length;
  // Let the server settle (timers, lazily freed buffers) before the parent reads its memory.
  await sleep(200);
  const open = sockets.filter((client) => !client.socket.destroyed).length;
  send({ type: 'opened', open, failed, firstError, answered, negotiated });
  await nextCommand();
  for (const client of [...sockets, ...warm.sockets]) client.socket.destroy();
  return { connections: open, failed, firstError, answered, negotiated };
}

/** How one bomb connection ended, as the client saw it. */
function outcome(counter: FrameCounter, ended: 'eof' | 'reset' | 'timeout'): string {
  if (counter.closeCode !== null) return `close ${counter.closeCode}`;
  if (counter.messages > 0) return 'echoed';
  return ended === 'timeout' ? 'no answer' : ended === 'eof' ? 'EOF without close' : 'reset';
}

/**
 * Compression bomb: 16 MiB of zeros, compressed to about 16 KiB when permessage-deflate is accepted (sent as is
 * when it is not), on each of `connections` connections at once; reports how each one ended.
 */
async function bomb(job: ClientJob): Promise<object> {
  const request = handshakeRequest(job.port, job.path, 'permessage-deflate; client_max_window_bits');
  const zeros = Buffer.alloc(BOMB_SIZE);
  const compressed = deflateMessage(zeros);
  const deflated = buildFrameBlock(OP_BINARY, compressed, 1, true).block;
  const { sockets, failed, firstError } = await openMany(job, job.connections, request);
  const plain = sockets.some((client) => !client.deflate) ? buildFrameBlock(OP_BINARY, zeros, 1).block : null;
  send({ type: 'warm' });
  await nextCommand();
  const outcomes = await Promise.all(
    sockets.map(
      (client) =>
        new Promise<string>((resolve) => {
          const counter = new FrameCounter();
          const socket = client.socket;
          let timer: NodeJS.Timeout | undefined;
          let settled = false;
          const finish = (ended: 'eof' | 'reset' | 'timeout'): void => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(outcome(counter, ended));
            socket.destroy();
          };
          socket.on('data', (chunk: Buffer) => {
            counter.push(chunk);
            if (counter.messages > 0) finish('eof');
          });
          socket.on('end', () => finish('eof'));
          socket.on('error', () => finish('reset'));
          socket.on('close', () => finish('eof'));
          if (client.head.length > 0) counter.push(client.head);
          socket.resume();
          socket.write(client.deflate ? deflated : plain!, () => {
            timer = setTimeout(() => finish('timeout'), job.answerTimeoutMs);
          });
        }),
    ),
  );
  return { outcomes, failed, firstError, compressedBytes: compressed.length, negotiated: sockets.filter((client) => client.deflate).length };
}

async function run(job: ClientJob): Promise<object> {
  switch (job.kind) {
    case 'echo':
      return echo(job);
    case 'handshake':
      return handshakes(job);
    case 'idle':
    case 'deflate-memory':
      return memory(job);
    case 'bomb':
      return bomb(job);
    case 'fanout':
      return fanout({ ...job, kind: job.kind }, PARENT);
    case 'slow-consumer':
      return slowConsumer({ ...job, kind: job.kind }, PARENT);
    default: {
      const unexpected: never = job.kind;
      throw new Error(`unknown job ${String(unexpected)}`);
    }
  }
}

process.once('message', (job: ClientJob) => {
  run(job).then(
    (result) => {
      send({ type: 'result', ...result });
      process.disconnect();
      // Sockets of a failed target may linger: do not wait for them.
      setTimeout(() => process.exit(0), 100).unref();
    },
    (error: unknown) => {
      send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      setTimeout(() => process.exit(1), 100).unref();
    },
  );
});
