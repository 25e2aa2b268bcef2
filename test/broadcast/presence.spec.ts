/**
 * Presence copies converging: two instances' `Presence` wired through a bus that loses what the test says, so that a
 * lost change (found by the next change's sequence number, or by a heartbeat) is repaired by a snapshot; stale and
 * duplicate messages change nothing; an instance dropped takes its entries with it, with `left` events.
 */
import { describe, expect, it } from '@jest/globals';
import type { ClusterMessage, ClusterMessageBody } from '../../lib/broadcast/cluster-messages.js';
import { Presence } from '../../lib/broadcast/presence.js';
import type { WebSocket } from '../../lib/node/websocket.js';

const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };

interface Node {
  readonly id: string;
  readonly presence: Presence;
  /** Presence events this instance delivered to its members: `room joined|left id`. */
  readonly events: string[];
}

/** Two instances whose messages go to each other unless `drop` says otherwise. */
function pair(drop: (message: ClusterMessage) => boolean = () => false): [Node, Node] {
  const nodes: Node[] = [];
  for (const id of ['a'.repeat(32), 'b'.repeat(32)]) {
    const events: string[] = [];
    const presence = new Presence({
      instanceId: id,
      logger: silent,
      publish: (body: ClusterMessageBody) => {
        const message = { v: 1, from: id, ...body } as ClusterMessage;
        if (drop(message)) return;
        for (const other of nodes) if (other.id !== id) other.presence.receive(message);
      },
      deliver: (room, text) => {
        const { data } = JSON.parse(text) as { data: { joined?: string; left?: string } };
        events.push(data.joined !== undefined ? `${room} joined ${data.joined}` : `${room} left ${data.left!}`);
      },
      memberships: () => [],
      dataOf: (client) => ({ name: client.id }),
    });
    presence.track({ events: true });
    nodes.push({ id, presence, events });
  }
  return nodes as [Node, Node];
}

const client = (id: string): WebSocket => ({ id }) as unknown as WebSocket;
const ids = (node: Node, room: string): string[] => node.presence.members(room).map((m) => m.id).sort();
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('presence copies', () => {
  it('a lost change is found by the next one and repaired by a snapshot', async () => {
    let lose = true;
    const [a, b] = pair((message) => {
      // Lose a's second change once.
      if (lose && message.t === 'pj' && message.from === 'a'.repeat(32) && message.seq === 2) {
        lose = false;
        return true;
      }
      return false;
    });
    a.presence.joined(client('c1'), 'lobby');
    a.presence.joined(client('c2'), 'lobby');
    expect(ids(b, 'lobby')).toEqual(['c1']);
    a.presence.joined(client('c3'), 'lobby');
    // Seq 3 after 1: b asked for a snapshot instead of applying it; a answers on the next turn of the loop.
    expect(ids(b, 'lobby')).toEqual(['c1']);
    await tick();
    expect(ids(b, 'lobby')).toEqual(['c1', 'c2', 'c3']);
    expect(b.presence.members('lobby').find((m) => m.id === 'c2')).toEqual({ id: 'c2', instance: a.id, data: { name: 'c2' } });
    expect(b.events).toEqual(['lobby joined c1', 'lobby joined c2', 'lobby joined c3']);
  });

  it('a heartbeat with a newer sequence number repairs a lost last change; stale messages change nothing', async () => {
    const [a, b] = pair((message) => message.t === 'pl');
    a.presence.joined(client('c1'), 'lobby');
    a.presence.left(client('c1'), 'lobby');
    expect(ids(b, 'lobby')).toEqual(['c1']);
    b.presence.receive({ v: 1, t: 'hb', from: a.id, seq: a.presence.seq });
    await tick();
    expect(ids(b, 'lobby')).toEqual([]);
    expect(b.events).toEqual(['lobby joined c1', 'lobby left c1']);
    // A replayed old change is ignored.
    b.presence.receive({ v: 1, t: 'pj', from: a.id, seq: 1, room: 'lobby', id: 'c1', data: null });
    expect(ids(b, 'lobby')).toEqual([]);
  });

  it('dropping an instance removes its entries everywhere with left events; a closed instance announces nothing', () => {
    const [a, b] = pair();
    a.presence.joined(client('c1'), 'lobby');
    a.presence.joined(client('c1'), 'kitchen');
    b.presence.joined(client('d1'), 'lobby');
    expect(ids(a, 'lobby')).toEqual(['c1', 'd1']);
    expect(a.presence.size).toBe(3);
    b.presence.drop(a.id);
    expect(ids(b, 'lobby')).toEqual(['d1']);
    expect(b.events.slice(-2).sort()).toEqual(['kitchen left c1', 'lobby left c1']);
    a.presence.close();
    a.presence.joined(client('c2'), 'lobby');
    expect(ids(b, 'lobby')).toEqual(['d1']);
  });
});
