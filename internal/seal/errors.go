package seal

import "errors"

// ErrKey is returned for a key of the wrong size or form.
var ErrKey = errors.New("invalid seal key")

// ErrSealed is returned when a sealed value cannot be opened: too short, of
// an unknown version, tampered with, sealed with another key or for other
// additional data.
var ErrSealed = errors.New("sealed value cannot be opened")
