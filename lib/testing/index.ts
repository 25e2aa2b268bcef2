/**
 * `nestjs-websockets/testing`: a kit for testing gateways, with jest, vitest or `node:test`.
 * - `startTestingApp(moduleRef)`: the app of a `TestingModule` on an ephemeral port, gateways on their own port too;
 * - `TestClient`: `request()`, `next(event)`, `expectClose(code)` on the client SDK.
 */
export { TestClient } from './test-client.js';
export type { TestClientOptions, TestClose, WaitOptions } from './test-client.js';
export { startTestingApp } from './testing-app.js';
export type { StartTestingAppOptions, TestingApp, TestingModuleLike } from './testing-app.js';
