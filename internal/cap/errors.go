package cap

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched by errors.Is on every error Parse, Validate and
// Marshal return because of the alert itself (bad XML, a schema rule broken).
// Errors reading the input do not match it.
var ErrInvalid = errors.New("invalid CAP 1.2 alert")

// ValidationError is one problem found in a CAP document or Alert.
type ValidationError struct {
	// Path locates the element: "alert/info[1]/area[0]/polygon[0]" (indexes
	// count from 0 among elements of the same name; an alert in a batch is
	// "alert[2]"). For XML that cannot be read, the path of the element
	// being read.
	Path string
	// Element is the element's name as written (with its prefix, if any).
	Element string
	// Reason says what is wrong, in words meant for the sender of the alert.
	Reason string
	// Line is the line in the document (from 1), or 0 when the problem is in
	// an Alert value rather than a document.
	Line int
}

// Error implements error.
func (e *ValidationError) Error() string {
	if e.Path == "" {
		if e.Line > 0 {
			return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
		}
		return e.Reason
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d): %s", e.Path, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// ValidationErrors is every problem found: for each alert, the problems met
// while reading it (document order), then those of the rules checked on the
// whole alert. errors.As with a **ValidationError yields the first one.
type ValidationErrors []*ValidationError

// Error implements error: one problem per line.
func (es ValidationErrors) Error() string {
	var b strings.Builder
	if len(es) > 1 {
		fmt.Fprintf(&b, "%d problems in CAP alert: ", len(es))
	}
	for i, e := range es {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems.
func (es ValidationErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Is reports whether target is ErrInvalid.
func (es ValidationErrors) Is(target error) bool { return target == ErrInvalid && len(es) > 0 }
