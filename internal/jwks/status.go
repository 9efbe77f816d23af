package jwks

import "time"

// ErrorLogAfter is how long fetches may keep failing before the failures are
// logged at ERROR instead of WARN: a blip is a warning, a lasting outage an error.
const ErrorLogAfter = time.Minute

// LastLoad returns when the keys were last fetched and installed
// successfully (the first load or a refresh); the zero time before the
// first load.
func (k *KeySet) LastLoad() time.Time {
	if ns := k.loadedAt.Load(); ns != 0 {
		return time.Unix(0, ns).UTC()
	}
	return time.Time{}
}

// KeyCount returns how many usable keys the current set holds (0 before the
// first load).
func (k *KeySet) KeyCount() int {
	if m := k.keys.Load(); m != nil {
		return len(m.all)
	}
	return 0
}

// URL returns the JWKS URL the set is fetched from.
func (k *KeySet) URL() string { return k.url }
