package gateway

import (
	"testing"

	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestBBoxIntersects(t *testing.T) {
	box := bbox{105, 20, 106, 21}
	tests := []struct {
		name  string
		other bbox
		want  bool
	}{
		{"inside", bbox{105.5, 20.5, 105.6, 20.6}, true},
		{"covering", bbox{100, 10, 110, 30}, true},
		{"overlapping a corner", bbox{105.9, 20.9, 107, 22}, true},
		{"touching the east edge", bbox{106, 20.5, 107, 20.6}, true},
		{"a point on the south edge", bbox{105.5, 20, 105.5, 20}, true},
		{"west of it", bbox{104, 20.5, 104.99, 20.6}, false},
		{"north of it", bbox{105.5, 21.01, 105.6, 22}, false},
		{"same longitudes, south of it", bbox{105, 10, 106, 19.99}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := box.intersects(tt.other); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
			if got := tt.other.intersects(box); got != tt.want {
				t.Errorf("reversed: got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestEncodeFeatureBBox(t *testing.T) {
	noGeom := airState(t, "no-geom", 0, 1)
	noGeom.GetAir().Location = nil
	badGeom := airState(t, "bad-geom", 0, 1)
	badGeom.GetAir().Location = &iocv1.Geometry{Wkb: []byte{1, 2, 3}}
	xyz := airState(t, "xyz", 0, 1)
	xyz.GetAir().Location = mustWKB(t, geom.NewPoint(geom.XYZ).MustSetCoords(geom.Coord{105.5, 21.5, 30}))
	tests := []struct {
		name    string
		st      *iocv1.EntityState
		want    bbox
		located bool
	}{
		{"point", airState(t, "p", 0, 1), bbox{105.8412345678, 21.0245, 105.8412345678, 21.0245}, true},
		{"point with height", xyz, bbox{105.5, 21.5, 105.5, 21.5}, true},
		{"line", trafficState(t, "l", 0), bbox{105.80, 21.00, 105.81, 21.01}, true},
		{"alert areas as a MultiPolygon", alertState(t, "a", cwSquare(105, 21), cwSquare(107, 20)), bbox{105, 20, 108, 22}, true},
		{"alert areas as a GeometryCollection", alertState(t, "gc", cwSquare(105, 21),
			geom.NewPoint(geom.XY).MustSetCoords(geom.Coord{104.5, 22.5})), bbox{104.5, 21, 106, 22.5}, true},
		{"alert without area", alertState(t, "none"), bbox{}, false},
		{"no geometry", noGeom, bbox{}, false},
		{"undecodable geometry", badGeom, bbox{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := encodeFeature(proto.Clone(tt.st).(*iocv1.EntityState), "")
			if err != nil {
				t.Fatal(err)
			}
			if f.located != tt.located {
				t.Fatalf("got located %v; want %v", f.located, tt.located)
			}
			if tt.located && f.box != tt.want {
				t.Errorf("got box %v; want %v", f.box, tt.want)
			}
		})
	}
}

func TestRemoveFrame(t *testing.T) {
	got := decodeJSON(t, removeFrame(`air/trạm "1"`))
	if got["type"] != "remove" || got["id"] != `air/trạm "1"` || len(got) != 2 {
		t.Errorf("got %v; want type remove and the id, nothing else", got)
	}
}
