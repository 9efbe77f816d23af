package netrule

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		raw string
		ok  bool
	}{
		{"https://login.microsoftonline.com/t/v2.0", true},
		{"http://127.0.0.1:8080/x", true},
		{"http://127.9.9.9/x", true},
		{"http://[::1]:9/x", true},
		{"http://LocalHost:9/x", true},
		{"http://example.com/x", false},
		{"http://localhost.example.com/x", false},
		{"http://127.0.0.1.nip.io/x", false},
		{"ftp://127.0.0.1/x", false},
		{"https:///nohost", false},
		{"https://user:pw@example.com/", false},
		{"//example.com/x", false},
		// regression (adversarial review): host spellings that are not plainly loopback
		{"http://localhost./x", false},
		{"http://127.0.0.1./x", false},
		{"http://0.0.0.0/x", false},
		{"http://[::]/x", false},
		{"http://127.1/x", false},
		{"http://2130706433/x", false},
		{"http://0x7f.0.0.1/x", false},
		{"http://[::1%25lo]/x", false},
		{"http://\u24dbocalhost/x", false}, // a look-alike (IDN) of localhost
		{"http://127.0.0.1:80@example.com/x", false},
		{"http://[::ffff:127.0.0.1]/x", true}, // IPv4-mapped loopback is loopback
		{"HTTP://127.0.0.1/x", true},
	}
	for _, tt := range tests {
		err := CheckRawURL(tt.raw)
		if (err == nil) != tt.ok {
			t.Errorf("CheckRawURL(%q) = %v, want ok=%v", tt.raw, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecureURL) {
			t.Errorf("CheckRawURL(%q) = %v, want ErrInsecureURL", tt.raw, err)
		}
	}
}

func TestCheckRedirect(t *testing.T) {
	mk := func(raw string) *http.Request {
		u, _ := url.Parse(raw)
		return &http.Request{URL: u}
	}
	tests := []struct {
		from, to string
		ok       bool
	}{
		{"https://a.example/keys", "https://a.example/keys2", true},
		{"https://a.example/keys", "https://A.EXAMPLE:443/keys2", true},
		{"https://a.example/keys", "http://a.example/keys", false},
		{"https://a.example/keys", "https://b.example/keys", false},
		{"https://a.example/keys", "https://a.example:8443/keys", false},
		{"http://127.0.0.1:1/keys", "http://127.0.0.2:1/keys", false},
		{"http://127.0.0.1:1/keys", "http://127.0.0.1:1/other", true},
		// regression (adversarial review): other spellings of the origin are other origins
		{"https://a.example/keys", "https://a.example./keys", false},
		{"http://127.0.0.1:1/keys", "http://localhost:1/keys", false},
		{"http://[::1]:1/keys", "http://[0:0:0:0:0:0:0:1]:1/keys", false},
		{"https://a.example/keys", "https://u:p@a.example/keys", false},
		{"https://a.example/keys", "https://a.example:443/keys", true},
	}
	for _, tt := range tests {
		err := CheckRedirect(mk(tt.to), []*http.Request{mk(tt.from)})
		if (err == nil) != tt.ok {
			t.Errorf("%s -> %s: %v, want ok=%v", tt.from, tt.to, err, tt.ok)
		}
	}
	var via []*http.Request
	for range MaxRedirects + 1 {
		via = append(via, mk("https://a.example/"))
	}
	if err := CheckRedirect(mk("https://a.example/"), via); !errors.Is(err, ErrRedirect) {
		t.Errorf("too many redirects: %v", err)
	}
}

// TestClientRefusesCrossHostRedirect sends a real redirect from one loopback
// server to another: the second must never be asked.
func TestClientRefusesCrossHostRedirect(t *testing.T) {
	var hit bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true }))
	defer other.Close()
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/keys", http.StatusFound)
	}))
	defer first.Close()
	for _, c := range []*http.Client{NewClient(5 * time.Second), Guard(&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}, time.Second)} {
		_, err := c.Get(first.URL)
		if !errors.Is(err, ErrRedirect) {
			t.Errorf("Get = %v, want ErrRedirect", err)
		}
	}
	if hit {
		t.Error("the redirect target was asked")
	}
	if _, err := NewClient(time.Second).Get("http://192.0.2.1/never"); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("plain http off loopback: %v, want ErrInsecureURL", err)
	}
}

func TestReadAll(t *testing.T) {
	if b, err := ReadAll(strings.NewReader("12345"), 5); err != nil || string(b) != "12345" {
		t.Errorf("ReadAll at limit = %q, %v", b, err)
	}
	if _, err := ReadAll(strings.NewReader("123456"), 5); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadAll over limit = %v, want ErrTooLarge", err)
	}
}

func TestExcerpt(t *testing.T) {
	got := Excerpt([]byte("line1\r\nline2\x00\xff" + strings.Repeat("x", 500)))
	if strings.ContainsAny(got, "\r\n\x00") || len(got) > ExcerptBytes+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("Excerpt = %q", got)
	}
	if got := Excerpt([]byte("short")); got != "short" {
		t.Errorf("Excerpt(short) = %q", got)
	}
}
