// Package consumertest proves, with throwaway consumer modules built in a
// temporary directory (a replace directive points at this repository), what a
// service importing authmw and tokencache gets: a module graph without echo,
// hcl or go-cty, and public test support (authmwtest, tokencachetest) that
// is enough to test its own handlers and clients. The consumers live in
// testdata/; the tests need the go command and the Go module proxy.
package consumertest
