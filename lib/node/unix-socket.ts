/**
 * Listening on a Unix domain socket path: a stale socket file left by a process that died is replaced, a live one
 * is not (EADDRINUSE, as for a TCP port), and the file gets the permissions asked for.
 *
 * Permissions are set right after bind(), before the server accepts its first connection: a client can only
 * connect in between if the umask allowed it, since connecting needs write permission on the file. A socket that
 * must never be reachable by others belongs in a directory that only its users can enter.
 */
import { once } from 'node:events';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';

/**
 * Starts `server` on the socket file `path`, replacing a stale one, then sets its permissions.
 * @param permissions the file's mode bits (`0o660`), or `null` to leave what the umask gives
 * @throws the listen error (EADDRINUSE when a live server has the path, EACCES, ENOENT for a missing directory),
 *   or the chmod error (the server is closed first)
 */
export async function listenOnSocketPath(server: net.Server, path: string, permissions: number | null): Promise<void> {
  // Checked before listening rather than after an EADDRINUSE: the server's 'error' listeners would report a failure
  // that is then recovered from.
  await removeStaleSocket(path);
  await listenOnce(server, path, permissions);
}

/**
 * Removes `path` if it is a socket file that nobody listens on (its server died without removing it), so that a
 * server can listen there again; for servers started by other code (Nest's `app.listen(path)`).
 * @returns whether a stale socket was removed
 */
export async function removeStaleSocket(path: string): Promise<boolean> {
  if (!(await isStaleSocket(path))) return false;
  unlinkSync(path);
  return true;
}

function listenOnce(server: net.Server, path: string, permissions: number | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      if (permissions !== null) {
        try {
          chmodSync(path, permissions);
        } catch (error) {
          server.close();
          reject(error);
          return;
        }
      }
      resolve();
    });
  });
}

/** Whether `path` is a socket file that nobody listens on (connecting is refused): safe to remove. */
async function isStaleSocket(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) return false;
  } catch {
    return false;
  }
  const probe = net.connect({ path });
  try {
    await once(probe, 'connect');
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  } finally {
    probe.destroy();
  }
}
