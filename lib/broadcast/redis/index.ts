/**
 * `nestjs-websockets/redis`: the broadcast bus over Redis pub/sub. Loading this entry point loads nothing else; the
 * bus loads `ioredis` (an optional peer dependency) when it first connects.
 */
export { RedisBroadcastBus, encodeRedisMessage, decodeRedisMessage } from './redis-bus.js';
export type { RedisBroadcastBusOptions, RedisClientLoader, DecodedRedisMessage } from './redis-bus.js';
export { RedisClientMissingError, RedisUnavailableError } from '../../errors.js';
