// Errors a user can fix: the CLI prints the message alone on one line and exits 2.
export class UserError extends Error {
  override readonly name = 'UserError';
}

/**
 * Ends a command with a chosen exit status after it said what the user needs to know
 * (a training run stopped by Ctrl-C exits 130, as the shell expects).
 */
export class CommandExit extends Error {
  override readonly name = 'CommandExit';

  constructor(readonly exitCode: number, message = '') {
    super(message);
  }
}
