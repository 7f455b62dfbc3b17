import { FlightlogError } from '../core/errors';

/** A bundle that cannot be written or read; the message is one line a user can act on. */
export class BundleError extends FlightlogError {
  constructor(code: string, message: string) {
    super(code, message, 1);
    this.name = 'BundleError';
  }
}
