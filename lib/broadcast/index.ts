/**
 * The broadcast layer: rooms and broadcasts over a node-layer server, across instances through a `BroadcastBus`
 * (in-process by default; over Redis with `nestjs-websockets/redis`). It uses no Nest package.
 */
export { newOrigin, ORIGIN_BYTES } from './broadcast-bus.js';
export type { BroadcastBus, BroadcastBusHealth, BroadcastEnvelope, BroadcastListener } from './broadcast-bus.js';
export { InProcessBroadcastBus } from './in-process-bus.js';
export { BroadcastServer } from './broadcast-server.js';
export type { BroadcastFilter, BroadcastServerInit, WebSocketsBroadcast, WebSocketsRoom } from './broadcast-server.js';
export type { BroadcastLogger } from './logger.js';
export { Rooms } from './rooms.js';
export type { ClusterCallOptions, ClusterClient, ClusterTarget, ServerEventHandler, ServerReply } from './cluster.js';
export type { PresenceMember, PresenceOptions } from './presence.js';
