package gateway

import (
	"fmt"
	"slices"
	"testing"
)

func TestSendQueueConflation(t *testing.T) {
	type step struct {
		key, frame string
		want       pushResult
	}
	tests := []struct {
		name  string
		max   int
		steps []step
		pop   int
		want  []string // frames popped, in order
		left  int
	}{
		{
			name:  "distinct keys keep arrival order",
			max:   10,
			steps: []step{{"a", "a1", pushAdded}, {"b", "b1", pushAdded}, {"c", "c1", pushAdded}},
			pop:   10,
			want:  []string{"a1", "b1", "c1"},
		},
		{
			name: "newer state replaces in place and keeps its place",
			max:  10,
			steps: []step{
				{"a", "a1", pushAdded}, {"b", "b1", pushAdded}, {"a", "a2", pushConflated},
				{"c", "c1", pushAdded}, {"a", "a3", pushConflated}, {"b", "b2", pushConflated},
			},
			pop:  10,
			want: []string{"a3", "b2", "c1"},
		},
		{
			name:  "overflow refuses a new key but still conflates a waiting one",
			max:   2,
			steps: []step{{"a", "a1", pushAdded}, {"b", "b1", pushAdded}, {"c", "c1", pushOverflow}, {"b", "b2", pushConflated}},
			pop:   10,
			want:  []string{"a1", "b2"},
		},
		{
			name:  "pop takes at most n",
			max:   10,
			steps: []step{{"a", "a1", pushAdded}, {"b", "b1", pushAdded}, {"c", "c1", pushAdded}},
			pop:   2,
			want:  []string{"a1", "b1"},
			left:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newSendQueue[string](tt.max)
			for i, s := range tt.steps {
				if got := q.push(s.key, s.frame); got != s.want {
					t.Fatalf("push %d (%s): got %v; want %v", i, s.key, got, s.want)
				}
			}
			got := q.pop(nil, tt.pop)
			if !slices.Equal(got, tt.want) {
				t.Errorf("popped %v; want %v", got, tt.want)
			}
			if q.len() != tt.left {
				t.Errorf("left %d; want %d", q.len(), tt.left)
			}
		})
	}
}

// TestSendQueueKeyReuse pushes a key again after it was popped: it must queue
// anew, at the end of the line, and the queue must not grow without bound
// while a writer keeps draining it.
func TestSendQueueKeyReuse(t *testing.T) {
	q := newSendQueue[string](3)
	for round := 0; round < 5000; round++ {
		for _, k := range []string{"a", "b", "c"} {
			if got := q.push(k, fmt.Sprint(k, round)); got != pushAdded {
				t.Fatalf("round %d push %s: got %v; want added", round, k, got)
			}
		}
		if got := q.pop(nil, 2); !slices.Equal(got, []string{fmt.Sprint("a", round), fmt.Sprint("b", round)}) {
			t.Fatalf("round %d: popped %v", round, got)
		}
		if got := q.push("a", "again"); got != pushAdded {
			t.Fatalf("round %d: re-push a got %v; want added", round, got)
		}
		if got := q.pop(nil, 10); !slices.Equal(got, []string{fmt.Sprint("c", round), "again"}) {
			t.Fatalf("round %d: popped %v; want [c%d again]", round, got, round)
		}
	}
	if cap(q.order) > 64 {
		t.Errorf("order slice grew to cap %d", cap(q.order))
	}
}

func TestTextFrame(t *testing.T) {
	for _, tt := range []struct {
		n      int
		header []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			p := make([]byte, tt.n)
			for i := range p {
				p[i] = byte('a' + i%26)
			}
			f := textFrame(p)
			if got := f[:len(tt.header)]; !slices.Equal(got, tt.header) {
				t.Errorf("header % x; want % x", got, tt.header)
			}
			if got := f[len(tt.header):]; !slices.Equal(got, p) {
				t.Errorf("payload differs (len %d; want %d)", len(got), len(p))
			}
		})
	}
}
