package auth

import "errors"

// ErrNoCredentials is returned by Authenticate when a request carries neither
// a bearer token nor a session cookie: the answer is 401.
var ErrNoCredentials = errors.New("no credentials")

// ErrInvalidCredentials is returned by Authenticate when a token or session
// is unknown, revoked, expired or forged: the answer is 401.
var ErrInvalidCredentials = errors.New("invalid credentials")

// ErrBadIdentity is returned (wrapped with what is wrong) when an identity's
// name, role or scopes are unusable.
var ErrBadIdentity = errors.New("bad identity")

// ErrBadCode is returned when a one-time sign-in code is unknown, used or expired.
var ErrBadCode = errors.New("unknown, used or expired sign-in code")

// ErrNotLoaded is returned by Authenticate for an identity token before the
// identity cache was loaded once: the answer is 503, not 401.
var ErrNotLoaded = errors.New("identities not loaded yet")
