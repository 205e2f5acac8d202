// Exit codes shared by every command: 0 success, 1 the operation failed, 2 bad arguments.
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure already explained to the user in one line; main prints it and exits 1. */
export class CommandFailed extends Error {
  override readonly name = 'CommandFailed';
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
