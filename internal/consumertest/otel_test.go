package consumertest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// sdkPrefixes are what only applications may build: the OpenTelemetry SDK,
// its exporters (and so gRPC and Prometheus) and contrib's autoexport.
var sdkPrefixes = []string{
	"go.opentelemetry.io/otel/sdk",
	"go.opentelemetry.io/otel/exporters/",
	"go.opentelemetry.io/contrib/",
	"google.golang.org/grpc",
	"github.com/prometheus/",
}

// authmw and tokencache depend on the OpenTelemetry API only: a service that
// imports them builds no SDK, exporter, gRPC or Prometheus package.
func TestLibrariesUseOnlyTheOTelAPI(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	root, _ := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "list", "-deps", "./authmw", "./authmw/echomw", "./tokencache")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	api := false
	for _, pkg := range deps {
		if pkg == "go.opentelemetry.io/otel/metric" {
			api = true
		}
		for _, p := range sdkPrefixes {
			if strings.HasPrefix(pkg, p) {
				t.Errorf("authmw or tokencache builds %s", pkg)
			}
		}
	}
	if !api {
		t.Error("go.opentelemetry.io/otel/metric is not among the dependencies: the check above proves nothing")
	}
}
