/** The benchmark's targets, workloads, ratios and goals (issues 6 and 13), as data. */
import type { ClientJob } from './client.js';

/** A server under test. */
export interface Target {
  readonly name: string;
  readonly label: string;
  /** Script and arguments, relative to the package root, once built. */
  readonly script: readonly string[];
  /** Speaks Socket.IO (v5 over Engine.IO v4) rather than plain WebSocket messages. */
  readonly socketIo?: boolean;
  /** Serves wss with the certificate the bench makes at run time (bench/tls.ts). */
  readonly tls?: boolean;
}

export const TARGETS: Readonly<Record<string, Target>> = {
  ours: { name: 'ours', label: 'nestjs-websockets (Node server)', script: ['dist/sample/echo-server.js'] },
  ws: { name: 'ws', label: 'ws 8 (defaults)', script: ['dist/bench/targets.js', 'ws'] },
  'ws-deflate': { name: 'ws-deflate', label: 'ws 8 (perMessageDeflate)', script: ['dist/bench/targets.js', 'ws-deflate'] },
  'nest-ours': { name: 'nest-ours', label: 'Nest + WebSocketsAdapter', script: ['dist/bench/targets.js', 'nest-ours'] },
  'nest-ws': { name: 'nest-ws', label: 'Nest + @nestjs/platform-ws 12', script: ['dist/bench/targets.js', 'nest-ws'] },
  'nest-socketio-echo': { name: 'nest-socketio-echo', label: 'Nest + @nestjs/platform-socket.io 12', script: ['dist/bench/targets.js', 'nest-socketio-echo'], socketIo: true },
  'ours-tls': { name: 'ours-tls', label: 'nestjs-websockets (Node server), wss', script: ['dist/sample/echo-server.js'], tls: true },
  'ws-tls': { name: 'ws-tls', label: 'ws 8 (defaults) on https.Server, wss', script: ['dist/bench/targets.js', 'ws-tls'], tls: true },
  tcp: { name: 'tcp', label: 'raw TCP echo (ceiling)', script: ['dist/bench/targets.js', 'tcp'] },
  'nest-ours-rooms': { name: 'nest-ours-rooms', label: 'Nest + WebSocketsAdapter, to(room).emit', script: ['dist/bench/targets.js', 'nest-ours-rooms'] },
  'nest-ws-rooms': { name: 'nest-ws-rooms', label: 'Nest + @nestjs/platform-ws 12, Map of Sets + send loop', script: ['dist/bench/targets.js', 'nest-ws-rooms'] },
  'nest-socketio': { name: 'nest-socketio', label: 'Nest + @nestjs/platform-socket.io 12, to(room).emit', script: ['dist/bench/targets.js', 'nest-socketio'], socketIo: true },
};

/** One workload: what the client does, against which targets, and what is reported. */
export interface Workload {
  readonly name: string;
  readonly title: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  readonly targets: readonly string[];
  /** Ratios reported, `[a, b]` meaning a / b, each computed within one round. */
  readonly pairs: ReadonlyArray<readonly [string, string]>;
  readonly job: Partial<ClientJob> & Pick<ClientJob, 'kind'>;
  /** Heading of a column of how connections ended (the client's `outcomes`), for workloads that report them. */
  readonly outcomes?: string;
}

/** Defaults of every job; a workload overrides what it needs. */
export const JOB_DEFAULTS: Omit<ClientJob, 'kind' | 'port' | 'path' | 'raw' | 'nestJson' | 'socketIo' | 'tlsCa'> = {
  connections: 1,
  inFlight: 1,
  size: 32,
  binary: false,
  compress: false,
  warmupMs: 500,
  durationMs: 2000,
  concurrency: 10,
  batch: 250,
  answerTimeoutMs: 5000,
  members: 500,
  messages: 200,
  warmupMessages: 200,
  bursts: 5,
  burst: 200,
  maxBehind: 400,
};

/** The workloads of issue 6; `quick` shortens rounds and sizes where it says so. */
export function workloads(quick: boolean): Workload[] {
  return [
    {
      name: 'echo-32',
      title: 'Echo, 32 B text, 50 connections x 10 in flight',
      unit: 'msg/s',
      higherIsBetter: true,
      targets: ['ours', 'ws', 'nest-ours', 'nest-ws', 'nest-socketio-echo', 'tcp'],
      pairs: [['ours', 'ws'], ['nest-ours', 'nest-ws'], ['nest-ours', 'nest-socketio-echo'], ['ours', 'nest-ours'], ['tcp', 'ws']],
      job: { kind: 'echo', connections: 50, inFlight: 10, size: 32 },
    },
    {
      name: 'echo-32-tls',
      title: 'Echo over wss, 32 B text, 50 connections x 10 in flight',
      unit: 'msg/s',
      higherIsBetter: true,
      targets: ['ours-tls', 'ws-tls'],
      pairs: [['ours-tls', 'ws-tls']],
      job: { kind: 'echo', connections: 50, inFlight: 10, size: 32 },
    },
    {
      name: 'echo-32-deflate',
      title: 'Echo, 32 B text with permessage-deflate, 50 connections x 10 in flight',
      unit: 'msg/s',
      higherIsBetter: true,
      targets: ['ours', 'ws-deflate'],
      pairs: [['ours', 'ws-deflate']],
      job: { kind: 'echo', connections: 50, inFlight: 10, size: 32, compress: true },
    },
    {
      name: 'echo-64k',
      title: 'Echo, 64 KiB binary, 10 connections x 4 in flight',
      unit: 'msg/s',
      higherIsBetter: true,
      targets: ['ours', 'ws', 'tcp'],
      pairs: [['ours', 'ws'], ['tcp', 'ws']],
      job: { kind: 'echo', connections: 10, inFlight: 4, size: 65_536, binary: true },
    },
    {
      name: 'echo-1m',
      title: 'Echo, 1 MiB binary, 4 connections x 2 in flight',
      unit: 'msg/s',
      higherIsBetter: true,
      targets: ['ours', 'ws', 'tcp'],
      pairs: [['ours', 'ws'], ['tcp', 'ws']],
      job: { kind: 'echo', connections: 4, inFlight: 2, size: 1_048_576, binary: true },
    },
    {
      name: 'handshake',
      title: 'Handshake rate: open, closing handshake, repeat (10 loops)',
      unit: 'conn/s',
      higherIsBetter: true,
      targets: ['ours', 'ws', 'nest-ours', 'nest-ws'],
      pairs: [['ours', 'ws'], ['nest-ours', 'nest-ws']],
      job: { kind: 'handshake', concurrency: 10 },
    },
    {
      name: 'handshake-tls',
      title: 'Handshake rate over wss: TLS handshake, open, closing handshake, repeat (10 loops, no session resumption)',
      unit: 'conn/s',
      higherIsBetter: true,
      targets: ['ours-tls', 'ws-tls'],
      pairs: [['ours-tls', 'ws-tls']],
      job: { kind: 'handshake', concurrency: 10 },
    },
    {
      name: 'idle',
      title: `Idle memory per connection, ${quick ? '2 000' : '10 000'} connections (server RSS growth)`,
      unit: 'KiB/conn',
      higherIsBetter: false,
      targets: ['ours', 'ws', 'nest-ours', 'nest-ws'],
      pairs: [['ours', 'ws'], ['nest-ours', 'nest-ws']],
      job: { kind: 'idle', connections: quick ? 2000 : 10_000, size: 32 },
    },
    {
      name: 'idle-tls',
      title: `Idle memory per wss connection, ${quick ? '1 000' : '5 000'} connections (server RSS growth)`,
      unit: 'KiB/conn',
      higherIsBetter: false,
      targets: ['ours-tls', 'ws-tls'],
      pairs: [['ours-tls', 'ws-tls']],
      job: { kind: 'idle', connections: quick ? 1000 : 5000, size: 32 },
    },
    {
      name: 'deflate-memory',
      title: `Memory per connection with permessage-deflate after one 4 KiB message, ${quick ? 500 : 2000} connections`,
      unit: 'KiB/conn',
      higherIsBetter: false,
      targets: ['ours', 'ws-deflate', 'nest-ours'],
      pairs: [['ours', 'ws-deflate']],
      job: { kind: 'deflate-memory', connections: quick ? 500 : 2000, size: 4096, compress: true },
    },
    {
      name: 'bomb',
      title: 'Compression bomb: 10 connections x 16 MiB of zeros (~16 KiB deflated; raw where deflate is refused)',
      unit: 'MiB peak RSS growth',
      higherIsBetter: false,
      targets: ['ours', 'ws', 'ws-deflate', 'nest-ours', 'nest-ws'],
      pairs: [],
      job: { kind: 'bomb', connections: 10 },
      outcomes: 'how the connections ended',
    },
    {
      name: 'fanout',
      title: 'Fan-out: 500 members in one room, 200 chat messages of 64 B published at once by a non-member (median of 5 bursts per round)',
      unit: 'deliveries/s',
      higherIsBetter: true,
      targets: ['nest-ours-rooms', 'nest-socketio', 'nest-ws-rooms'],
      pairs: [['nest-ours-rooms', 'nest-socketio'], ['nest-ours-rooms', 'nest-ws-rooms'], ['nest-socketio', 'nest-ws-rooms']],
      job: { kind: 'fanout', members: 500, messages: 200, warmupMessages: 200, bursts: 5, size: 64, batch: 100 },
    },
    {
      name: 'slow-consumer',
      title:
        'Slow consumer: 20 members and one that stops reading, 10 000 chat messages of 1.9 KB ' +
        '(bursts of 200, each once every member that reads is at most 400 behind)',
      unit: 'MiB peak RSS growth',
      higherIsBetter: false,
      targets: ['nest-ours-rooms', 'nest-socketio', 'nest-ws-rooms'],
      pairs: [],
      job: { kind: 'slow-consumer', members: 20, messages: 10_000, warmupMessages: 2000, size: 1900, burst: 200, maxBehind: 400 },
      outcomes: 'how the stuck member ended',
    },
  ];
}

/** A goal of issues 6 and 20: a paired ratio, or an absolute figure of one target, compared with a bound. */
export interface Goal {
  readonly label: string;
  readonly workload: string;
  /** Ratio `a / b`, or one target's own figure when `b` is absent. */
  readonly a: string;
  readonly b?: string;
  readonly op: '>=' | '<=';
  readonly bound: number;
  /** For the bomb and the slow consumer: every connection of every round reported must have ended with this close code. */
  readonly closeCode?: number;
}

export const GOALS: readonly Goal[] = [
  { label: 'echo 32 B, Node server / ws', workload: 'echo-32', a: 'ours', b: 'ws', op: '>=', bound: 5 },
  { label: 'echo 64 KiB / ws', workload: 'echo-64k', a: 'ours', b: 'ws', op: '>=', bound: 3.3 },
  { label: 'echo 1 MiB / ws', workload: 'echo-1m', a: 'ours', b: 'ws', op: '>=', bound: 3 },
  { label: 'handshake rate / ws', workload: 'handshake', a: 'ours', b: 'ws', op: '>=', bound: 1.2 },
  { label: 'echo 32 B, Nest adapter / platform-ws', workload: 'echo-32', a: 'nest-ours', b: 'nest-ws', op: '>=', bound: 2.5 },
  { label: 'echo 32 B, Nest adapter / platform-socket.io', workload: 'echo-32', a: 'nest-ours', b: 'nest-socketio-echo', op: '>=', bound: 3 },
  { label: 'handshake, Nest adapter / platform-ws', workload: 'handshake', a: 'nest-ours', b: 'nest-ws', op: '>=', bound: 1.3 },
  { label: 'echo 32 B over wss / ws over wss', workload: 'echo-32-tls', a: 'ours-tls', b: 'ws-tls', op: '>=', bound: 2 },
  { label: 'handshake over wss / ws over wss', workload: 'handshake-tls', a: 'ours-tls', b: 'ws-tls', op: '>=', bound: 1.2 },
  { label: 'echo 32 B deflate / ws perMessageDeflate', workload: 'echo-32-deflate', a: 'ours', b: 'ws-deflate', op: '>=', bound: 4 },
  { label: 'idle memory per connection / ws', workload: 'idle', a: 'ours', b: 'ws', op: '<=', bound: 1.05 },
  { label: 'idle memory per wss connection / ws over wss', workload: 'idle-tls', a: 'ours-tls', b: 'ws-tls', op: '<=', bound: 1 },
  { label: 'idle memory, Nest adapter / platform-ws', workload: 'idle', a: 'nest-ours', b: 'nest-ws', op: '<=', bound: 0.6 },
  { label: 'memory per connection with deflate (KiB)', workload: 'deflate-memory', a: 'ours', op: '<=', bound: 40 },
  { label: 'compression bomb: peak RSS growth (MiB), all 1009', workload: 'bomb', a: 'ours', op: '<=', bound: 10, closeCode: 1009 },
  { label: 'fan-out to 500, Nest adapter / platform-socket.io', workload: 'fanout', a: 'nest-ours-rooms', b: 'nest-socketio', op: '>=', bound: 4 },
  { label: 'slow consumer: peak RSS growth (MiB), stuck member 1013', workload: 'slow-consumer', a: 'nest-ours-rooms', op: '<=', bound: 3, closeCode: 1013 },
];
