package jwks

// KeyCount returns the number of usable keys currently loaded (0 before the
// first successful load), for metrics.
func (k *KeySet) KeyCount() int {
	if m := k.keys.Load(); m != nil {
		return len(m.all)
	}
	return 0
}
