package jwks

import (
	"context"
	"errors"
	"testing"

	"github.com/f2fauth/f2fauth/internal/testutil"
)

// TestParseCompactStrictHeader: the protected header is one strict JSON
// object. Each attack below is signed with the published key, so only the
// header rule can refuse it. Today's main accepted the duplicate kid/alg,
// the invalid UTF-8 and the invalid JSON in a member it does not read.
func TestParseCompactStrictHeader(t *testing.T) {
	t.Parallel()
	keys := keysOnce()
	srv := newJWKSServer(t, jwksJSON(t, pubJWK(t, keys.k1, "k1", nil), pubJWK(t, keys.k2, "k2", nil)))
	ks := newTestKeySet(t, srv, Options{})
	kidless := newTestKeySet(t, srv, Options{RequireKID: true})
	payload := []byte(`{"sub":"x"}`)
	for _, tc := range []struct {
		name, header string
		ks           *KeySet
		want         error
	}{
		{"control", `{"alg":"RS256","kid":"k1"}`, ks, nil},
		{"duplicate kid", `{"alg":"RS256","kid":"k2","kid":"k1"}`, ks, ErrMalformed},
		{"duplicate alg", `{"alg":"HS256","alg":"RS256","kid":"k1"}`, ks, ErrMalformed},
		{"duplicate unread member", `{"alg":"RS256","kid":"k1","typ":"JWT","typ":"at+jwt"}`, ks, ErrMalformed},
		{"invalid UTF-8", "{\"alg\":\"RS256\",\"kid\":\"k1\",\"x\":\"\xff\"}", ks, ErrMalformed},
		{"lone surrogate escape", `{"alg":"RS256","kid":"k1","x":"\ud800"}`, ks, ErrMalformed},
		{"invalid JSON in unread member", `{"alg":"RS256","kid":"k1","x":[1,,2]}`, ks, ErrMalformed},
		{"bad escape", `{"alg":"RS256","kid":"k1","x":"\q"}`, ks, ErrMalformed},
		{"trailing data", `{"alg":"RS256","kid":"k1"} {}`, ks, ErrMalformed},
		{"null header", `null`, ks, ErrMalformed},
		{"array header", `[]`, ks, ErrMalformed},
		{"kid not a string", `{"alg":"RS256","kid":1}`, ks, ErrMalformed},
		{"crit null", `{"alg":"RS256","kid":"k1","crit":null}`, ks, ErrMalformed},
		{"case-variant Kid is just another member", `{"alg":"RS256","kid":"k1","Kid":"k2"}`, ks, nil},
		{"kid-less refused with RequireKID", `{"alg":"RS256"}`, kidless, ErrUnknownKey},
		{"kid-less allowed otherwise", `{"alg":"RS256"}`, ks, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := testutil.CompactRaw([]byte(tc.header), payload, rs256(keys.k1))
			v, err := tc.ks.verifyCompact(context.Background(), tok)
			if tc.want == nil {
				if err != nil || string(v.Payload) != string(payload) || v.KID != "k1" {
					t.Fatalf("got kid %q payload %q err %v, want success", v.KID, v.Payload, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || v.Payload != nil {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// verified is what authmw gets from the one path: ParseCompact, then Verify.
type verified struct {
	KID     string
	ID      KeyID
	Payload []byte
}

func (k *KeySet) verifyCompact(ctx context.Context, token string) (verified, error) {
	t, err := ParseCompact(token)
	if err != nil {
		return verified{}, err
	}
	id, err := k.Verify(ctx, t)
	if err != nil {
		return verified{KID: id.KID, ID: id}, err
	}
	return verified{KID: id.KID, ID: id, Payload: t.Payload}, nil
}
