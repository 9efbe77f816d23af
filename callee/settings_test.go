package callee

import "testing"

// TestSettingListsAreCopies: a caller changing a list it got changes nothing in the
// callee (gateway mode reads GatewaySettings' list).
func TestSettingListsAreCopies(t *testing.T) {
	t.Parallel()
	for name, list := range map[string]func() []string{"Settings": Settings, "GatewaySettings": GatewaySettings, "RequiredSettings": RequiredSettings} {
		got := list()
		want := got[0]
		got[0] = "CHANGED"
		if again := list(); again[0] != want {
			t.Errorf("%s()[0] = %q after a caller changed its copy; want %q", name, again[0], want)
		}
	}
}
