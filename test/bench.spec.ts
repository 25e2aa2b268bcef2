/**
 * The benchmark's own code on tiny inputs, so that a broken import, client or report shows in `npm test` and not at
 * the next `npm run bench`: the protocol benchmark on a few frames, the load client (spawned by run.ts's `measure()`,
 * as the suite does) against real targets compiled here from the sources, and the report built from its samples.
 * The room workloads run against the three chat apps (this package, platform-ws with its hand-written rooms,
 * platform-socket.io spoken to as Engine.IO over a raw WebSocket) with 20 members, and the slow consumer against ours
 * with messages large enough (32 KiB) that a few hundred of them fill the stuck member's kernel buffers and its bound.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { io } from 'socket.io-client';
import { runJsonDepthBench } from '../bench/json-depth.js';
import { renderProtocolTable, runProtocolBench, type ProtocolRow } from '../bench/protocol.js';
import { renderMarkdown, renderSvg, type RunResult, type Sample, type WorkloadResult } from '../bench/report.js';
import { measure } from '../bench/run.js';
import { formatNumber } from '../bench/stats.js';
import { TARGETS, type Workload } from '../bench/workloads.js';
import { compileForChild, type CompiledTree } from './support/compile.js';
import { withTimeout } from './support/net.js';
import { describeWithPeer } from './support/peers.js';

const TINY_PROTOCOL = { rounds: 1, smallBytes: 32 * 200, largeBytes: 2 * 1024 * 1024, minFrames: 2, handshakeRequests: 200 };

const ECHO: Workload = {
  name: 'echo-32',
  title: 'Echo, 32 B text, 2 connections x 2 in flight',
  unit: 'msg/s',
  higherIsBetter: true,
  targets: ['ours', 'ws'],
  pairs: [['ours', 'ws']],
  job: { kind: 'echo', connections: 2, inFlight: 2, size: 32, warmupMs: 100, durationMs: 300 },
};

const HANDSHAKE: Workload = {
  name: 'handshake',
  title: 'Handshake rate, 2 loops',
  unit: 'conn/s',
  higherIsBetter: true,
  targets: ['ours'],
  pairs: [],
  job: { kind: 'handshake', concurrency: 2, warmupMs: 100, durationMs: 300 },
};

const FANOUT: Workload = {
  name: 'fanout',
  title: 'Fan-out, 20 members, 20 messages',
  unit: 'deliveries/s',
  higherIsBetter: true,
  targets: ['nest-ours-rooms', 'nest-socketio', 'nest-ws-rooms'],
  pairs: [['nest-ours-rooms', 'nest-socketio'], ['nest-ours-rooms', 'nest-ws-rooms']],
  job: { kind: 'fanout', members: 20, messages: 20, warmupMessages: 5, bursts: 3, size: 64, batch: 20 },
};

const SLOW_CONSUMER: Workload = {
  name: 'slow-consumer',
  title: 'Slow consumer, 3 members and a stuck one, 300 messages of 32 KiB',
  unit: 'MiB peak RSS growth',
  higherIsBetter: false,
  targets: ['nest-ours-rooms'],
  pairs: [],
  job: { kind: 'slow-consumer', members: 3, messages: 300, warmupMessages: 20, size: 32_768, burst: 50, maxBehind: 100, batch: 20 },
  outcomes: 'how the stuck member ended',
};

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Pids of this process's children, from /proc (a target or client left running would show here). */
function childPids(): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) children.push(Number(entry));
    } catch {
      // The process ended while the list was read.
    }
  }
  return children;
}

/** How many of each kind of handle this process holds (timers, pipes, child processes...). */
function handles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** Kinds of handle of which there are more than `before`, once the handles being closed have had `ms` to go. */
async function handlesLeft(before: Map<string, number>, ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const more = [...handles()].filter(([kind, count]) => count > (before.get(kind) ?? 0)).map(([kind]) => kind);
    if (more.length === 0 || Date.now() > deadline) return more;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Runs `measure()` and checks that both of its processes have exited and that it left nothing open in this process
 * (a pipe or process handle closes a moment after its child exits; a leaked timer would stay).
 */
async function measureClosed(workload: Workload, target: string): Promise<Sample> {
  const before = handles();
  const sample = await measure(workload, target, 0, { quick: false, built: compiled.dir });
  expect(childPids()).toEqual([]);
  expect(await handlesLeft(before, 1000)).toEqual([]);
  return sample;
}

/**
 * Checks that `svg` is well-formed XML as far as the report writes it: every tag closed and nested, attributes
 * quoted, `&` only in entities, no `<` in text or attributes. Returns the element names in document order.
 */
function parseSvg(svg: string): string[] {
  const names: string[] = [];
  const open: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let at = 0;
  for (;;) {
    const lt = svg.indexOf('<', at);
    const text = svg.slice(at, lt < 0 ? svg.length : lt);
    expect(text).not.toMatch(/&(?!amp;|lt;|gt;|quot;)/);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const match = tag.exec(svg);
    if (match === null) throw new Error(`malformed tag at ${lt}: ${svg.slice(lt, lt + 80)}`);
    const [whole, closing, name, attributes, selfClosing] = match;
    expect(attributes).not.toMatch(/&(?!amp;|lt;|gt;|quot;)/);
    if (closing === '/') {
      expect(open.pop()).toBe(name);
    } else {
      names.push(name!);
      if (selfClosing !== '/') open.push(name!);
    }
    at = lt + whole.length;
  }
  expect(open).toEqual([]);
  return names;
}

let compiled: CompiledTree;
const samples = new Map<string, Sample>();

beforeAll(async () => {
  // The scripts measure() spawns, built from the sources now rather than taken from a dist/ that may be stale.
  compiled = await compileForChild('bench-', ['bench/client.ts', 'bench/gc-hook.ts', 'bench/targets.ts', 'bench/room-targets.ts', 'sample/echo-server.ts'], {
    timeoutMs: 90_000,
  });
}, 95_000);

afterAll(() => compiled?.remove());

describe('bench/protocol.ts', () => {
  it('measures every workload with finite positive figures and prints a row for each', async () => {
    const lines: string[] = [];
    const rows: ProtocolRow[] = await runProtocolBench(TINY_PROTOCOL, (line) => lines.push(line));
    expect(rows.map((row) => row.name)).toEqual(['32 B frames', '64 KiB frames', '1 MiB frames', 'handshake request parse']);
    for (const row of rows) {
      expect(Number.isFinite(row.ours) && row.ours > 0).toBe(true);
      if (row.name.endsWith('frames')) {
        expect(Number.isFinite(row.ws!) && row.ws! > 0).toBe(true);
        expect(Number.isFinite(row.ratio!) && row.ratio! > 0).toBe(true);
      }
    }
    expect(lines).toHaveLength(3);
    const table = renderProtocolTable(rows, TINY_PROTOCOL.rounds).split('\n');
    expect(table.filter((line) => /^\| \d+ (B|KiB|MiB) frames \| \d+\.\d\d (M msg|GB)\/s \| \d+\.\d\d (M msg|GB)\/s \| \d+\.\d\dx \|$/.test(line))).toHaveLength(3);
    expect(table).toContainEqual(expect.stringMatching(/^\| handshake request parse \| \d+ k req\/s \| n\/a/));
  }, 15_000);
});

describe('the load client, through run.ts measure()', () => {
  it.each(['ours', 'ws'])('echoes 32 B messages against %s, verified, and closes everything', async (target) => {
    const sample = await measureClosed(ECHO, target);
    expect(sample.error).toBeUndefined();
    const { detail } = sample;
    expect(sample.value).toBeGreaterThan(0);
    expect(detail.messagesPerSecond).toBe(sample.value);
    // Both connections sent their first message back byte for byte, and every reply carried 32 bytes of payload.
    expect(detail.verified).toBe(2);
    expect(detail.negotiated).toBe(0);
    expect(Number(detail.bytesPerSecond) / sample.value).toBeCloseTo(32, 0);
    expect(Number(detail.seconds)).toBeGreaterThanOrEqual(0.29);
    expect(sample.serverCpuPercent).toBeGreaterThan(0);
    expect(sample.clientCpuPercent).toBeGreaterThan(0);
    samples.set(`echo-32 ${target}`, sample);
  }, 15_000);

  it('echoes 32 B Socket.IO events against nest-socketio-echo (platform-socket.io), verified, and closes everything', async () => {
    const sample = await measureClosed(ECHO, 'nest-socketio-echo');
    expect(sample.error).toBeUndefined();
    expect(sample.value).toBeGreaterThan(0);
    expect(sample.detail.verified).toBe(2);
    expect(Number(sample.detail.bytesPerSecond) / sample.value).toBeCloseTo(32, 0);
  }, 30_000);

  // The wss targets serve the certificate bench/tls.ts makes with openssl; the client trusts only it.
  describeWithPeer('openssl', 'over wss', () => {
    it.each(['ours-tls', 'ws-tls'])('echoes 32 B messages against %s, verified, and closes everything', async (target) => {
      const sample = await measureClosed(ECHO, target);
      expect(sample.error).toBeUndefined();
      expect(sample.value).toBeGreaterThan(0);
      expect(sample.detail.verified).toBe(2);
      expect(Number(sample.detail.bytesPerSecond) / sample.value).toBeCloseTo(32, 0);
    }, 30_000);

    it('runs the handshake loops against ours-tls without a failure', async () => {
      const sample = await measureClosed(HANDSHAKE, 'ours-tls');
      expect(sample.error).toBeUndefined();
      expect(sample.value).toBeGreaterThan(0);
      expect(sample.detail.failed).toBe(0);
    }, 15_000);
  });

  it('runs the handshake loops against ours without a failure, and closes everything', async () => {
    const sample = await measureClosed(HANDSHAKE, 'ours');
    expect(sample.error).toBeUndefined();
    expect(sample.value).toBeGreaterThan(0);
    expect(sample.detail.failed).toBe(0);
    expect(sample.serverCpuPercent).toBeGreaterThan(0);
    samples.set('handshake ours', sample);
  }, 15_000);

  it('counts refused handshakes as failures, not as handshakes', async () => {
    // The raw TCP echo does not speak WebSocket: it sends the handshake request back instead of a 101.
    const sample = await measureClosed({ ...HANDSHAKE, targets: ['tcp'] }, 'tcp');
    expect(sample.error).toBeUndefined();
    expect(sample.value).toBe(0);
    expect(sample.detail.failed).toBeGreaterThan(0);
    expect(sample.detail.firstError).toMatch(/^Error: handshake refused: GET \/ HTTP\/1\.1$/);
  }, 15_000);
});

describe('the room workloads, through run.ts measure()', () => {
  it.each(FANOUT.targets)('fans out to 20 members of %s: each gets every message once, in order, and everything closes', async (target) => {
    const sample = await measureClosed(FANOUT, target);
    expect(sample.error).toBeUndefined();
    expect(sample.value).toBeGreaterThan(0);
    const { detail } = sample;
    expect(detail.deliveriesPerSecond).toBe(sample.value);
    // Three measured bursts of 400 deliveries, the figure their median; the warm-up burst was checked (in sequence:
    // each member got 5 + 3 x 20 messages) but not timed.
    expect(detail.deliveries).toBe(20 * 20);
    const rates = (detail.burstRates as number[]).slice().sort((a, b) => a - b);
    expect(rates).toHaveLength(3);
    expect(rates[1]).toBe(sample.value);
    // The three bursts took at least as long as their 1 200 deliveries at the rates measured.
    expect(Number(detail.seconds)).toBeGreaterThanOrEqual(rates.reduce((sum, rate) => sum + 400 / rate, 0) * 0.999);
    expect(sample.serverCpuPercent).toBeGreaterThanOrEqual(0);
    samples.set(`fanout ${target}`, sample);
  }, 20_000);

  it('the socket.io target serves socket.io-client as it serves the raw Engine.IO members: join, then chat comes back as the event', async () => {
    // The members of the room workloads speak Engine.IO v4 over a raw WebSocket; the real client, over WebSocket only,
    // must see the same app: `joined` for its join, and its own chat back as a `chat` event with the same data.
    const target = spawn(process.execPath, [compiled.entry('bench/targets.ts'), 'nest-socketio'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(target, 'exit');
    try {
      const [line] = (await withTimeout(once(createInterface({ input: target.stdout! }), 'line'), 15_000, 'the socket.io target to listen')) as [string];
      const { port } = JSON.parse(line) as { port: number };
      const client = io(`http://127.0.0.1:${port}`, { path: '/ws', transports: ['websocket'], reconnection: false });
      try {
        const event = (name: string): Promise<unknown> => withTimeout(new Promise((resolve) => client.once(name, resolve)), 10_000, `the ${name} event`);
        await event('connect');
        expect(client.io.engine.transport.name).toBe('websocket');
        const joined = event('joined');
        client.emit('join', 'bench');
        expect(await joined).toBe('bench');
        const chat = event('chat');
        client.emit('chat', { room: 'bench', text: '#0000000 hello' });
        expect(await chat).toEqual({ room: 'bench', text: '#0000000 hello' });
      } finally {
        client.close();
      }
    } finally {
      target.kill('SIGTERM');
      await exited;
    }
  }, 20_000);

  it('closes the member that stops reading with 1013 on ours, while the members that read get everything', async () => {
    const sample = await measureClosed(SLOW_CONSUMER, 'nest-ours-rooms');
    expect(sample.error).toBeUndefined();
    const { detail } = sample;
    expect(detail.outcomes).toEqual(['close 1013']);
    expect(detail.complete).toBe(3);
    // The stuck member got the warm-up and then some, up to where the server gave up on it: not all 320.
    expect(Number(detail.stuckReceived)).toBeGreaterThanOrEqual(20);
    expect(Number(detail.stuckReceived)).toBeLessThan(320);
    expect(detail.alive).toBe(true);
    expect(Number.isFinite(sample.value)).toBe(true);
    expect(Number(detail.peakBytes)).toBeGreaterThanOrEqual(Number(detail.baselineBytes));
    samples.set('slow-consumer nest-ours-rooms', sample);
  }, 30_000);
});

describe('bench/report.ts', () => {
  function run(): RunResult {
    expect([...samples.keys()].sort()).toEqual([
      'echo-32 ours', 'echo-32 ws', 'fanout nest-ours-rooms', 'fanout nest-socketio', 'fanout nest-ws-rooms', 'handshake ours', 'slow-consumer nest-ours-rooms',
    ]);
    const workload = (w: Workload): WorkloadResult => ({
      name: w.name, title: w.title, unit: w.unit, higherIsBetter: w.higherIsBetter, targets: [...w.targets],
      pairs: w.pairs.map(([a, b]) => [a, b] as [string, string]),
      samples: w.targets.map((target) => samples.get(`${w.name} ${target}`)!),
      ...(w.outcomes === undefined ? {} : { outcomes: w.outcomes }),
    });
    return {
      started: '2026-11-25T12:00:00.000Z', quick: true, rounds: 1,
      machine: { cpu: 'test <cpu> & co', memory: '1 GiB', os: 'Linux', node: process.version, fdLimit: '1024' },
      workloads: [workload(ECHO), workload(HANDSHAKE), workload(FANOUT), workload(SLOW_CONSUMER)],
    };
  }

  it('renders a Markdown row per target with the measured figures, and the ratio', () => {
    const markdown = renderMarkdown(run()).split('\n');
    for (const [key, sample] of samples) {
      const label = escapeRegExp(TARGETS[sample.target]!.label);
      const figure = escapeRegExp(formatNumber(sample.value));
      // The slow consumer's row ends with how its stuck member ended.
      const outcome = key.startsWith('slow-consumer') ? ' \\| 1x close 1013' : '';
      const row = new RegExp(`^\\| ${label} \\| ${figure} \\(${figure}-${figure}\\) \\| \\d+% \\| \\d+%${outcome} \\|$`);
      expect({ key, rows: markdown.filter((line) => row.test(line)).length }).toEqual({ key, rows: 1 });
    }
    const ratio = samples.get('echo-32 ours')!.value / samples.get('echo-32 ws')!.value;
    expect(markdown).toContain(`| *ratio ours / ws* | ${ratio.toFixed(2)} (${ratio.toFixed(2)}-${ratio.toFixed(2)})x | | |`);
    // The same pair per second of server CPU: what a target did with the CPU it got.
    const ours = samples.get('echo-32 ours')!;
    const ws = samples.get('echo-32 ws')!;
    const perCpu = (ours.value / ours.serverCpuPercent / (ws.value / ws.serverCpuPercent)).toFixed(2);
    expect(markdown).toContain(`| *ratio ours / ws per second of server CPU* | ${perCpu} (${perCpu}-${perCpu})x | | |`);
    expect(markdown).toContainEqual(expect.stringMatching(/^\| echo 32 B, Node server \/ ws \| >= 5x \| \d+\.\d\d \(/));
    // Targets left out of the run: their goals are not judged and their pairs get no ratio row.
    expect(markdown).toContain('| echo 32 B, Nest adapter / platform-ws | >= 2.5x | not measured in this run | - |');
    expect(markdown.filter((line) => line.startsWith('| *ratio nest-ours / nest-ws*'))).toEqual([]);
    expect(markdown.filter((line) => line.includes('n/a'))).toEqual([]);
  });

  it('renders the room workloads: both fan-out ratios, the stuck member column, and their goals', () => {
    const markdown = renderMarkdown(run()).split('\n');
    const fanout = (target: string): number => samples.get(`fanout ${target}`)!.value;
    for (const other of ['nest-socketio', 'nest-ws-rooms']) {
      const ratio = (fanout('nest-ours-rooms') / fanout(other)).toFixed(2);
      expect(markdown).toContain(`| *ratio nest-ours-rooms / ${other}* | ${ratio} (${ratio}-${ratio})x | | |`);
    }
    const ratio = (fanout('nest-ours-rooms') / fanout('nest-socketio')).toFixed(2);
    expect(markdown).toContainEqual(expect.stringMatching(new RegExp(`^\\| fan-out to 500, Nest adapter / platform-socket\\.io \\| >= 4x \\| ${ratio} \\(${ratio}-${ratio}\\)x \\| (yes|\\*\\*no\\*\\*) \\|$`)));
    expect(markdown).toContain('| target | MiB peak RSS growth | server CPU | client CPU | how the stuck member ended |');
    const growth = samples.get('slow-consumer nest-ours-rooms')!.value.toFixed(2);
    expect(markdown).toContainEqual(
      expect.stringMatching(new RegExp(`^\\| slow consumer: peak RSS growth \\(MiB\\), stuck member 1013 \\| <= 3 \\| ${escapeRegExp(growth)} \\(\\S+\\); 1/1 closed with 1013 \\| (yes|\\*\\*no\\*\\*) \\|$`)),
    );
  });

  it('judges a close-code goal not met when a round failed, whatever the other rounds showed', () => {
    const result = run();
    const slow = result.workloads.find((w) => w.name === 'slow-consumer')!;
    const failed: Sample = { round: 1, target: 'nest-ours-rooms', value: Number.NaN, serverCpuPercent: Number.NaN, clientCpuPercent: Number.NaN, detail: {}, error: 'Error: 1 healthy member(s) got a message count other than 10400' };
    const markdown = renderMarkdown({ ...result, rounds: 2, workloads: [{ ...slow, samples: [...slow.samples, failed] }] }).split('\n');
    expect(markdown).toContainEqual(expect.stringMatching(/^\| slow consumer: .*; 1\/2 closed with 1013 \| \*\*no\*\* \|$/));
    expect(markdown).toContainEqual(expect.stringMatching(/\| 1x close 1013, 1x round failed \|$/));
  });

  it('renders a well-formed SVG with a bar for the goal it has both targets of', () => {
    const svg = renderSvg(run());
    const names = parseSvg(svg);
    expect(names[0]).toBe('svg');
    expect(svg).toContain('test &lt;cpu&gt; &amp; co');
    expect(svg).toContain('>echo 32 B, Node server / ws</text>');
    // The background and three bars (echo 32 B / ws, fan-out / socket.io, the slow consumer): the handshake goal has
    // no ws sample here, so no bar.
    expect(names.filter((name) => name === 'rect')).toHaveLength(4);
    expect(svg).toContain('>fan-out to 500, Nest adapter / platform-socket.io</text>');
  });
});

describe('bench/json-depth.ts', () => {
  it('times the default parser against JSON.parse and refuses the attack with its id', () => {
    const rows = runJsonDepthBench({ rounds: 1, roundMs: 1, depth: 1000 });
    expect(rows.map((row) => row.label)).toEqual(['32 B echo', '1 KiB object', '16 KiB object', '64 KiB object', '64 KiB string', 'attack, 1000 deep']);
    for (const row of rows) {
      expect(row.jsonParseUs).toBeGreaterThan(0);
      expect(row.parserUs).toBeGreaterThan(0);
    }
  });
});
