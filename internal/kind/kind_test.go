package kind

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestRegister(t *testing.T) {
	var r Registry
	noise := Kind{Name: "noise", Values: []Value{{Name: "LAeq", Min: 0, Max: 200, Required: true}}}
	un, err := r.Register(noise)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := r.Lookup("noise"); !ok || k.Values[0].Name != "LAeq" || !r.Known("noise") || !r.Known("air") {
		t.Errorf("Lookup(noise) = %v, %v; want it registered, air known", k, ok)
	}
	if _, err := r.Register(noise); !errors.Is(err, ErrInvalid) {
		t.Errorf("registering noise twice: err = %v; want ErrInvalid", err)
	}
	if got := r.All(); !slices.Contains(got, "noise") || !slices.Contains(got, "air") {
		t.Errorf("All() = %v; want the built-ins and noise", got)
	}
	un()
	if r.Known("noise") {
		t.Error("noise is known after unregistering it")
	}
	for name, k := range map[string]Kind{
		"built in":      {Name: "air", Values: noise.Values},
		"upper case":    {Name: "Noise", Values: noise.Values},
		"dot":           {Name: "no.ise", Values: noise.Values},
		"no values":     {Name: "noise"},
		"reserved":      {Name: "noise", Values: []Value{{Name: "location"}}},
		"twice":         {Name: "noise", Values: []Value{{Name: "a"}, {Name: "a"}}},
		"bounds":        {Name: "noise", Values: []Value{{Name: "a", Min: 2, Max: 1}}},
		"NaN bound":     {Name: "noise", Values: []Value{{Name: "a", Min: math.NaN()}}},
		"subject token": {Name: "noise>", Values: noise.Values},
	} {
		if _, err := r.Register(k); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v; want ErrInvalid", name, err)
		}
	}
}

func TestValueCheck(t *testing.T) {
	v := Value{Name: "LAeq", Min: 0, Max: 200}
	for x, bad := range map[float64]bool{0: false, 200: false, 55.5: false, -1: true, 201: true, math.Inf(1): true} {
		if got := v.Check(x) != ""; got != bad {
			t.Errorf("Check(%v) bad = %v; want %v", x, got, bad)
		}
	}
	if (Value{Name: "x"}).Check(-1e300) != "" || (Value{Name: "x"}).Check(math.NaN()) == "" {
		t.Error("an unbounded value takes any finite number and no NaN")
	}
}

// TestRegisterBoundsTypes checks that a kind's types are bounded: each one
// is quoted in the rejection of every item of another type, so a long list
// would make the answer to a small request huge.
func TestRegisterBoundsTypes(t *testing.T) {
	values := []Value{{Name: "LAeq"}}
	many := make([]string, MaxTypes+1)
	for i := range many {
		many[i] = "Type" + strings.Repeat("x", i)
	}
	long := strings.Repeat("T", MaxTypeBytes)
	var r Registry
	un, err := r.Register(Kind{Name: "noise", Types: append(many[:MaxTypes:MaxTypes], long), Values: values})
	if err == nil {
		un()
		t.Errorf("%d types registered; want at most %d", MaxTypes+1, MaxTypes)
	}
	un, err = r.Register(Kind{Name: "noise", Types: append(many[:MaxTypes-1:MaxTypes-1], long), Values: values})
	if err != nil {
		t.Fatalf("%d types, one of %d bytes: %v; want them taken", MaxTypes, MaxTypeBytes, err)
	}
	un()
	for name, types := range map[string][]string{
		"too many":      many,
		"too long":      {long + "x"},
		"empty":         {""},
		"twice":         {"NoiseLevelObserved", "NoiseLevelObserved"},
		"control":       {"Noise\x00Level"},
		"space":         {"Noise Level"},
		"invalid UTF-8": {"Noise\xffLevel"},
	} {
		if un, err := r.Register(Kind{Name: "noise", Types: types, Values: values}); !errors.Is(err, ErrInvalid) {
			if un != nil {
				un()
			}
			t.Errorf("%s: err = %v; want ErrInvalid", name, err)
		}
	}
}
