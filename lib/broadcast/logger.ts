/**
 * What the broadcast layer logs through: the four methods of Nest's `LoggerService` that it uses, so that a Nest
 * `Logger`, `console` or any logger of the application fits without this layer depending on Nest.
 */
export interface BroadcastLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, ...details: string[]): void;
  debug?(message: string): void;
}
