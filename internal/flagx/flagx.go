// Package flagx registers number and duration flags that refuse 0 where 0
// is not a setting. The services' configurations read a zero field as "the
// default", which suits a program building a Config; on the command line it
// would give an operator who asked for none (no timeout, no queue, no
// replicas) the default without a word. These flags refuse 0 instead, and
// say why, through the flag package's "invalid value" error (and the
// command's IOCHUB_* variable alike).
package flagx

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Number is what the flags of this package hold.
type Number interface {
	int | int64 | float64 | time.Duration
}

// Positive registers a flag named name on fs for *p, set to value now, that
// takes values above 0 only.
func Positive[T Number](fs *flag.FlagSet, p *T, name string, value T, usage string) {
	*p = value
	fs.Var(&number[T]{p: p}, name, describe[T](usage, "above 0"))
}

// NonZero registers a flag named name on fs for *p, set to value now, that
// takes any value but 0; a negative value means what negative says (e.g.
// "never", "no limit"), and usage should say so too.
func NonZero[T Number](fs *flag.FlagSet, p *T, name string, value T, negative, usage string) {
	*p = value
	fs.Var(&number[T]{p: p, negative: negative}, name, describe[T](usage, "other than 0"))
}

// describe adds to usage what the flag takes, with its type in back quotes
// (the flag package shows it as the value's name in -help, as it does for
// its own flags), before the usage's closing "(IOCHUB_…)" if it has one.
// A usage that already names its value in back quotes is left as it is.
func describe[T Number](usage, rule string) string {
	if strings.Contains(usage, "`") {
		return usage
	}
	var zero T
	what := "a `number`"
	switch any(zero).(type) {
	case time.Duration:
		what = "a `duration`"
	case int, int64:
		what = "an `int`"
	}
	what += " " + rule
	if i := strings.LastIndex(usage, " (IOCHUB_"); i >= 0 && strings.HasSuffix(usage, ")") {
		return usage[:i] + "; " + what + usage[i:]
	}
	if usage == "" {
		return what
	}
	return usage + "; " + what
}

// number is a flag.Value (and flag.Getter) of a T that is never 0, and
// never negative unless negative says what that means.
type number[T Number] struct {
	p        *T
	negative string
}

func (v *number[T]) String() string {
	if v.p == nil {
		var zero T
		return format(zero)
	}
	return format(*v.p)
}

func (v *number[T]) Get() any {
	return *v.p
}

func (v *number[T]) Set(s string) error {
	n, err := parse[T](s)
	if err != nil {
		return err
	}
	switch {
	case n == 0 && v.negative != "":
		return fmt.Errorf("must not be 0: give a positive value, or a negative one for %s", v.negative)
	case n == 0:
		return fmt.Errorf("must be above 0")
	case n < 0 && v.negative == "":
		return fmt.Errorf("must be above 0")
	}
	*v.p = n
	return nil
}

func parse[T Number](s string) (T, error) {
	var out T
	var err error
	switch p := any(&out).(type) {
	case *time.Duration:
		*p, err = time.ParseDuration(s)
	case *int:
		*p, err = strconv.Atoi(s)
	case *int64:
		*p, err = strconv.ParseInt(s, 10, 64)
	case *float64:
		*p, err = strconv.ParseFloat(s, 64)
	}
	if err != nil {
		// The flag package adds the flag's name and the value given.
		return out, fmt.Errorf("not a %s", kind[T]())
	}
	return out, nil
}

func kind[T Number]() string {
	var zero T
	switch any(zero).(type) {
	case time.Duration:
		return "duration (e.g. 30s, 5m, 2h)"
	case float64:
		return "number"
	}
	return "whole number"
}

func format[T Number](n T) string {
	switch x := any(n).(type) {
	case time.Duration:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return fmt.Sprint(n)
}
