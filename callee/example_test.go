package callee_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/f2fauth/f2fauth/callee"
)

// The callee listens on 127.0.0.1 (or CALLEE_LISTEN_HOST) and the port the Functions host gives it.
func ExampleListenAddr() {
	env := map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "34567"}
	addr, _ := callee.ListenAddr(func(k string) string { return env[k] })
	fmt.Println(addr)
	bad := map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "eighty"}
	_, err := callee.ListenAddr(func(k string) string { return bad[k] })
	fmt.Println(err)
	// Output:
	// 127.0.0.1:34567
	// callee: invalid configuration: FUNCTIONS_CUSTOMHANDLER_PORT must be a TCP port number (0-65535), got "eighty"
}

// NewServer builds the callee from AUTHMW_* settings; Run does the same and also
// listens, handles SIGTERM/SIGINT and shuts down gracefully.
func ExampleNewServer() {
	ctx := context.Background()
	s, err := callee.NewServer(ctx, os.LookupEnv, nil)
	if err != nil {
		log.Fatal(err) // e.g. "AUTHMW_AUDIENCES is required …"
	}
	defer s.Close()
	if err := s.ListenAndServe(ctx); err != nil {
		log.Fatal(err)
	}
}

// CALLEE_UPSTREAM_URL turns the callee into a gateway; every gateway setting is
// checked at startup and a bad one is named.
func ExampleGatewayConfigFromEnv() {
	env := map[string]string{"CALLEE_UPSTREAM_URL": "http://127.0.0.1:3000", "CALLEE_UPSTREAM_TIMEOUT": "10s"}
	cfg, _ := callee.GatewayConfigFromEnv(func(k string) string { return env[k] })
	fmt.Println(cfg.Upstream, cfg.Timeout, cfg.PassAuthorization)

	off := map[string]string{"CALLEE_UPSTREAM_URL": "http://10.1.2.3:3000"}
	_, err := callee.GatewayConfigFromEnv(func(k string) string { return off[k] })
	fmt.Println(err != nil)
	// Output:
	// http://127.0.0.1:3000 10s true
	// true
}
