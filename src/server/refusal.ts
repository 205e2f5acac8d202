// What a refused token is told. Only the holder of a token can ask about it, so saying that it
// expired or was revoked, and when, gives away nothing; an unknown token learns only that.
import type { TokenRefusal } from './store/store.js';

export function refusalMessage(r: TokenRefusal): string {
  switch (r.reason) {
    case 'unknown':
      return 'the server does not know this token; check TRAVERSE_TOKEN, or ask an administrator for one (traverse token create)';
    case 'revoked':
      return `this token was revoked at ${new Date(r.at).toISOString()}; ask an administrator for a new one`;
    case 'expired':
      return `this token expired at ${new Date(r.at).toISOString()}; ask an administrator for a new one`;
    case 'valid':
      // Valid again by the time we looked (a race with rotation): the caller should just retry.
      return 'the token was not accepted; try again';
  }
}
