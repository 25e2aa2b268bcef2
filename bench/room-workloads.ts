/**
 * The room workloads of the load client (bench/client.ts runs them): members that join one room of a chat app
 * (bench/room-targets.ts), a publisher that is not a member (both bench/chat-client.ts), and the two jobs.
 *
 * - `fanout`: `members` join; one unmeasured burst of `warmupMessages`, then `bursts` times `messages` chat
 *   messages written at once, each burst once the previous one is complete; a burst's rate is its deliveries per
 *   second from its write to the last delivery of the last member, and the figure is the median burst. (One burst to
 *   500 members lasts 0.1-2 s: on shared cores a single one is at the mercy of the scheduler.)
 * - `slow-consumer`: `members` healthy members and one more that stops reading at the TCP level (its socket paused,
 *   so the kernel buffers fill and then the server's); `messages` chat messages published at a chat rate (see
 *   `publishPaced`); the parent samples the server's RSS. Every healthy member must get everything; how the stuck
 *   member ended is the outcome.
 *
 * Every member checks that its chat messages arrive in sequence, exactly once (bench/chat-client.ts): a duplicate, a
 * gap, a reordering or a member closed by the server fails the round.
 */
import { ChatClient, chatFrames, type Hooks } from './chat-client.js';

/** What the room jobs need of the job the parent sent (see ClientJob). */
export interface RoomJob {
  readonly kind: 'fanout' | 'slow-consumer';
  readonly port: number;
  readonly socketIo: boolean;
  readonly members: number;
  readonly messages: number;
  readonly warmupMessages: number;
  readonly bursts: number;
  readonly size: number;
  readonly burst: number;
  readonly maxBehind: number;
  readonly batch: number;
}

/** The IPC channel to the parent (bench/run.ts). */
export interface Parent {
  send(message: object): void;
  /** The parent's next command (`go` after a baseline, `finish` after a reading). */
  next(): Promise<unknown>;
}

/** How long all members may take to get a burst, or a stuck member to drain, before the round fails. */
const WAIT_MS = 60_000;
/** Late duplicates would arrive within this after the last expected delivery. */
const GRACE_MS = 200;
/** A stuck member that reads again and gets nothing for this long is still open (its server never closed it). */
const DRAIN_IDLE_MS = 2000;
const DRAIN_POLL_MS = 20;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** A wait for deliveries: resolved once `done()` holds after a delivery, rejected on a failure or after WAIT_MS. */
interface Wait {
  readonly promise: Promise<void>;
  progress(): void;
  fail(reason: string): void;
}

function waitFor(done: () => boolean, what: () => string): Wait {
  let resolve: () => void = () => undefined;
  let reject: (error: Error) => void = () => undefined;
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((ok, fail) => {
    resolve = ok;
    reject = fail;
    timer = setTimeout(() => fail(new Error(`${what()} after ${WAIT_MS / 1000} s`)), WAIT_MS);
  }).finally(() => clearTimeout(timer));
  const wait = { promise, progress: () => (done() ? resolve() : undefined), fail: (reason: string) => reject(new Error(reason)) };
  wait.progress();
  return wait;
}

/** No wait in progress: deliveries and failures between waits are checked at the end. */
const IDLE: Wait = { promise: Promise.resolve(), progress: () => undefined, fail: () => undefined };

/** Opens `count` clients, `batch` at a time. */
async function openClients(job: RoomJob, count: number, join: boolean, hooks: Hooks): Promise<ChatClient[]> {
  const clients: ChatClient[] = [];
  for (let opened = 0; opened < count; ) {
    const n = Math.min(job.batch, count - opened);
    clients.push(...(await Promise.all(Array.from({ length: n }, () => ChatClient.open(job, join, hooks)))));
    opened += n;
  }
  return clients;
}

/**
 * Checks the members at the end of a round.
 * @throws Error for the first member that went wrong, or when one has a count other than `expected`
 */
function checkMembers(members: readonly ChatClient[], expected: number, what: string): void {
  const failed = members.find((m) => m.error !== null);
  if (failed !== undefined) throw new Error(`a ${what}: ${failed.error}`);
  const wrong = members.filter((m) => m.received !== expected);
  if (wrong.length > 0) throw new Error(`${wrong.length} ${what}(s) got a message count other than ${expected} (e.g. ${wrong[0]!.received})`);
}

/**
 * Fan-out: every member gets every message. Each burst's clock runs from its write to its last delivery.
 * @throws Error when a member misses a message, gets one twice or out of order, is closed, or the deliveries take
 *   over a minute
 */
export async function fanout(job: RoomJob, parent: Parent): Promise<object> {
  let delivered = 0;
  let wait = IDLE;
  const hooks: Hooks = {
    chat: () => {
      delivered++;
      wait.progress();
    },
    failed: (reason) => wait.fail(reason),
  };
  const members = await openClients(job, job.members, true, hooks);
  const publisher = await ChatClient.open(job, false, hooks);
  try {
    const deliver = async (from: number, to: number): Promise<number> => {
      const before = delivered;
      const expected = job.members * (to - from);
      const frames = chatFrames(job, from, to);
      wait = waitFor(() => delivered - before >= expected, () => `${delivered - before} of ${expected} deliveries`);
      const started = performance.now();
      publisher.socket.write(frames);
      await wait.promise;
      wait = IDLE;
      return (performance.now() - started) / 1000;
    };
    if (job.warmupMessages > 0) await deliver(0, job.warmupMessages);
    const startCpu = cpuMs();
    const started = performance.now();
    parent.send({ type: 'mark', phase: 'start' });
    const deliveries = job.members * job.messages;
    const burstRates: number[] = [];
    for (let burst = 0, from = job.warmupMessages; burst < job.bursts; burst++, from += job.messages) {
      burstRates.push(deliveries / (await deliver(from, from + job.messages)));
    }
    const seconds = (performance.now() - started) / 1000;
    parent.send({ type: 'mark', phase: 'end' });
    const clientCpuPercent = (cpuMs() - startCpu) / 10 / seconds;
    await sleep(GRACE_MS);
    checkMembers(members, job.warmupMessages + job.bursts * job.messages, 'member');
    return { deliveriesPerSecond: median(burstRates), burstRates, deliveries, seconds, clientCpuPercent, members: job.members, messages: job.messages };
  } finally {
    publisher.close();
    for (const member of members) member.close();
  }
}

/**
 * Publishes messages `from` to `to - 1` in bursts of `burst`, each burst written at once; before the next burst every
 * member in `readers` must be at most `maxBehind` messages behind what was published, and after the last one they
 * must have everything. That is a chat rate that readers keep up with, and the stuck member is the only one left
 * behind. (All 10 000 at once, a server that never yields would pile up megabytes for every member, and a bound such
 * as `maxBufferedAmount` would rightly close healthy members too.)
 */
async function publishPaced(job: RoomJob, publisher: ChatClient, readers: readonly ChatClient[], from: number, to: number, setWait: (wait: Wait) => void): Promise<void> {
  const slowest = (): number => {
    let min = Infinity;
    for (const member of readers) if (member.received < min) min = member.received;
    return min;
  };
  for (let next = from; next < to; ) {
    const end = Math.min(next + job.burst, to);
    publisher.socket.write(chatFrames(job, next, end));
    next = end;
    const due = end === to ? to : end - job.maxBehind;
    const wait = waitFor(() => slowest() >= due, () => `the slowest member that reads at ${slowest()} of ${due} messages`);
    setWait(wait);
    await wait.promise;
  }
  setWait(IDLE);
}

/** How the stuck member ended once it read again: its close code, EOF, a reset, or still open (with what it got). */
async function drainStuck(stuck: ChatClient, total: number): Promise<string> {
  stuck.socket.resume();
  const deadline = Date.now() + WAIT_MS;
  let last = -1;
  let lastProgress = 0;
  for (;;) {
    if (stuck.counter.closeCode !== null) return `close ${stuck.counter.closeCode}`;
    if (stuck.closed) return stuck.socketError === null ? 'EOF without close' : 'reset';
    const now = Date.now();
    if (stuck.received !== last) {
      last = stuck.received;
      lastProgress = now;
    } else if (now - lastProgress > DRAIN_IDLE_MS || now > deadline) {
      return stuck.received === total ? 'open, got all' : `open, got ${stuck.received} of ${total}`;
    }
    await sleep(DRAIN_POLL_MS);
  }
}

/**
 * Slow consumer: healthy members and one stuck member; the parent takes a baseline once the stuck member stops
 * reading (after a warm-up that every member reads, long enough for V8's young generation to reach its working size)
 * and reads the server's peak RSS once every healthy member has every message.
 * @throws Error when a healthy member misses a message, gets one twice or out of order, is closed, or falls a minute
 *   behind
 */
export async function slowConsumer(job: RoomJob, parent: Parent): Promise<object> {
  let wait = IDLE;
  const setWait = (next: Wait): void => {
    wait = next;
  };
  const hooks: Hooks = { chat: () => wait.progress(), failed: (reason) => wait.fail(reason) };
  const healthy = await openClients(job, job.members, true, hooks);
  // The stuck member's close is what is measured, not a failure: its hooks only count.
  const [stuck] = await openClients(job, 1, true, { chat: () => wait.progress(), failed: () => undefined });
  const publisher = await ChatClient.open(job, false, hooks);
  const everyone = [...healthy, stuck!];
  const total = job.warmupMessages + job.messages;
  try {
    await publishPaced(job, publisher, everyone, 0, job.warmupMessages, setWait);
    stuck!.socket.pause();
    parent.send({ type: 'warm' });
    await parent.next();
    const startCpu = cpuMs();
    const started = performance.now();
    parent.send({ type: 'mark', phase: 'start' });
    await publishPaced(job, publisher, healthy, job.warmupMessages, total, setWait);
    const seconds = (performance.now() - started) / 1000;
    parent.send({ type: 'mark', phase: 'end' });
    const clientCpuPercent = (cpuMs() - startCpu) / 10 / seconds;
    // The peak is read before the stuck member reads again and the server can let go of what it holds.
    parent.send({ type: 'measured' });
    await parent.next();
    const outcome = await drainStuck(stuck!, total);
    // What the stuck member did get must still be in sequence; that it got less is the policy.
    if (stuck!.error !== null) throw new Error(`the stuck member: ${stuck!.error}`);
    await sleep(GRACE_MS);
    checkMembers(healthy, total, 'healthy member');
    return { outcomes: [outcome], stuckReceived: stuck!.received, healthy: healthy.length, complete: healthy.length, messages: job.messages, seconds, clientCpuPercent };
  } finally {
    publisher.close();
    for (const member of everyone) member.close();
  }
}
