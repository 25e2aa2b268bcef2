/**
 * The sample app as two processes on one real redis-server: `who` answers with a room's members on both instances,
 * and clients that joined with `"presence": true` get `presence` events as members join and leave anywhere (the
 * others get none).
 */
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { closePeers, connectPeer, type Peer } from '../nest/ws-peer.js';
import { freePort } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { SAMPLE_BUILD_TIMEOUT_MS, SampleApp } from '../support/sample-process.js';

let redis: RedisServer;
let sample: SampleApp;

describeWithPeer('redis', 'the sample app on two instances: who and presence', () => {
  beforeAll(async () => {
    [redis, sample] = await Promise.all([startRedis(), SampleApp.build()]);
  }, SAMPLE_BUILD_TIMEOUT_MS + 10_000);

  afterEach(async () => {
    await closePeers();
  });

  afterAll(async () => {
    await sample?.dispose();
    await redis?.close();
  });

  it('answers who with the members of every instance, and sends presence events to the members that asked', async () => {
    const ports = [await freePort(), await freePort()] as const;
    await Promise.all(ports.map((port) => sample.start(port, { WEBSOCKETS_REDIS_URL: redis.url, SAMPLE_TOKEN: '' })));
    const connect = (port: number): Promise<Peer> => connectPeer(`ws://127.0.0.1:${port}/ws`);

    // A member that asks for presence hears its own join first, which tells it its id.
    const alice = await connect(ports[0]);
    alice.send({ event: 'join', data: { room: 'lobby', presence: true } });
    const aliceId = ((await alice.next()) as { data: { joined: string } }).data.joined;
    expect(await alice.next()).toEqual({ event: 'joined', data: { room: 'lobby' } });

    const bob = await connect(ports[1]);
    bob.send({ event: 'join', data: { room: 'lobby', presence: true } });
    const bobId = ((await bob.next()) as { data: { joined: string } }).data.joined;
    expect(await bob.next()).toEqual({ event: 'joined', data: { room: 'lobby' } });
    expect(await alice.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: bobId } });

    const carol = await connect(ports[1]);
    carol.send({ event: 'join', data: { room: 'lobby' } });
    expect(await carol.next()).toEqual({ event: 'joined', data: { room: 'lobby' } });
    const carolJoined = (await alice.next()) as { data: { joined: string } };
    const carolId = carolJoined.data.joined;
    expect(await bob.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: carolId } });

    for (const asker of [carol, alice]) {
      asker.send({ event: 'who', data: { room: 'lobby' } });
      const who = (await asker.next()) as { event: string; data: { room: string; members: Array<{ id: string }> } };
      expect(who.event).toBe('who');
      expect(who.data.room).toBe('lobby');
      expect(who.data.members.map((m) => m.id).sort()).toEqual([aliceId, bobId, carolId].sort());
    }

    carol.ws.close();
    expect(await alice.next()).toEqual({ event: 'presence', data: { room: 'lobby', left: carolId } });
    expect(await bob.next()).toEqual({ event: 'presence', data: { room: 'lobby', left: carolId } });
    expect([alice.pending(), bob.pending()]).toEqual([0, 0]);
  }, 60_000);
});
