/** How the adapter shows an error: its stack for the log, its message for the client. */

/** An error's stack (or message) for the log; not `instanceof Error`, which fails for errors of another realm. */
export function errorText(error: unknown): string {
  const { stack, message } = (typeof error === 'object' && error !== null ? error : {}) as { stack?: unknown; message?: unknown };
  return typeof stack === 'string' ? stack : typeof message === 'string' ? message : String(error);
}

/** An error's message, for the client. */
export function messageOf(error: unknown): string {
  const message = (typeof error === 'object' && error !== null ? error : {}) as { message?: unknown };
  return typeof message.message === 'string' ? message.message : String(error);
}
