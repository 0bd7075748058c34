// Package auth verifies and mints the JWTs that feedd accepts, and finds
// the token of a request. It returns errors; internal/api decides how a
// request without a usable token is answered.
//
// The algorithms a [Verifier] accepts are pinned to its key type: HS256/384/512
// for a secret, RS*/PS* for an RSA key, the curve's own ES* for an ECDSA key
// and EdDSA for an Ed25519 key. Every error it returns is short, never
// contains the token, and is safe to show to a client.
package auth
