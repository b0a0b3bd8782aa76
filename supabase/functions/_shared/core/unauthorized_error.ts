/**
 * The error every signature scheme raises when a delivery carries no valid credential (401).
 */

/** Raised when a delivery carries no valid credential. */
export class UnauthorizedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnauthorizedError";
  }
}
