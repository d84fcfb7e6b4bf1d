// Errors a user can fix: the CLI prints the message alone on one line and exits 2.
export class UserError extends Error {
  override readonly name = 'UserError';
}
