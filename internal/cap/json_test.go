package cap

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestJSONNames checks that the JSON form uses CAP's element names and
// leaves absent optional elements out.
func TestJSONNames(t *testing.T) {
	b, err := json.Marshal(parseFile(t, "capvalidator_at_valid.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	want := map[string]bool{"identifier": true, "sender": true, "sent": true, "status": true, "msgType": true, "scope": true, "references": true, "info": true}
	got := map[string]bool{}
	for _, k := range keys {
		got[k] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got keys %v; want %v", got, want)
	}
	if m["sent"] != "2024-07-12T13:59:49+02:00" {
		t.Errorf("got sent %v; want 2024-07-12T13:59:49+02:00", m["sent"])
	}
	info := m["info"].([]any)[0].(map[string]any)
	area := info["area"].([]any)[0].(map[string]any)
	if gc := area["geocode"].([]any)[0].(map[string]any); gc["valueName"] != "EMMA_ID" || gc["value"] != "AT108" {
		t.Errorf("got geocode %v; want EMMA_ID AT108", gc)
	}
	if _, ok := info["audience"]; ok {
		t.Error("absent audience is in the JSON")
	}
}
