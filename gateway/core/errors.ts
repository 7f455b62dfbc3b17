/**
 * An error a user can act on: a stable code to look up and a one-line message.
 * Anything else that reaches the CLI's top level is a bug and is reported as such.
 */
export class FlightlogError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** process exit code when this ends a CLI command */
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = 'FlightlogError';
  }
}

/** Bad command-line usage: exit code 2, like most Unix tools. */
export class UsageError extends FlightlogError {
  constructor(message: string) {
    super('E_USAGE', message, 2);
    this.name = 'UsageError';
  }
}

/** Config file errors name the file, the path inside the document and what was expected. */
export class ConfigError extends FlightlogError {
  constructor(
    readonly file: string,
    readonly docPath: string,
    readonly expected: string,
    readonly line?: number,
  ) {
    super('E_CONFIG', `${file}${line ? `:${line}` : ''}: ${docPath || '(document)'}: ${expected}`, 1);
    this.name = 'ConfigError';
  }
}
