package authmw

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var claimSeeds = []string{
	`{"aud":"api://callee","iss":"https://sts.windows.net/t/","iat":1700000000,"nbf":1700000000,"exp":1700003600,"aio":"x","appid":"a","appidacr":"2","idp":"https://sts.windows.net/t/","idtyp":"app","oid":"o","rh":"0.x.","roles":["A","B"],"sub":"o","tid":"t","uti":"u","ver":"1.0","xms_mirid":"/sub/x","n":{"a":[1,{"b":null}],"c":"}"}}`,
	`{"aud":["a","b"],"exp":1.5e9,"groups":[],"roles":null,"name":"caf\u00e9 \"q\"","sub":"é"}`,
	` { "exp" : 10 , "aud" : null } `,
	`{}`, `{"exp":-1}`, `{"exp":1e400}`, `{"exp":"1"}`, `{"aud":1}`, `{"aud":["a",1]}`, `{"roles":"a"}`,
	`{"iss":"a","iss":"b"}`, `{"x":[1,2,3],"y":true,"z":false,"w":null}`, `[]`, `null`, `{"a":1}x`, `{"a":01}`,
	`{"a":"\x"}`, `{"exp":10,}`, `{"exp":1.}`, `{"exp":-}`, `{"iss":"a\u0000b"}`, `{"name":"\ud83d\ude00"}`,
}

// TestDecodeClaimsMatchesEncodingJSON: on valid JSON, decodeClaims reads what
// encoding/json reads (when keys are spelled exactly), and it accepts no more.
func TestDecodeClaimsMatchesEncodingJSON(t *testing.T) {
	for _, s := range claimSeeds {
		checkDecodeClaims(t, []byte(s))
	}
}

func FuzzDecodeClaims(f *testing.F) {
	for _, s := range claimSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeClaims(t, b) })
}

func checkDecodeClaims(t *testing.T, b []byte) {
	t.Helper()
	var got tokenClaims
	gotErr := decodeClaims(b, &got)
	var want tokenClaims
	wantErr := json.Unmarshal(b, &want)
	if !json.Valid(b) {
		// decodeClaims may accept invalid JSON inside unread claims, whose
		// arrays and objects it matches by brackets only: that is signed
		// issuer content, never read.
		return
	}
	var top map[string]json.RawMessage
	json.Unmarshal(b, &top)
	for k := range top {
		if k != strings.ToLower(k) {
			return // encoding/json matches names case-insensitively; decodeClaims does not
		}
	}
	if gotErr != nil || wantErr != nil {
		if gotErr == nil && wantErr != nil {
			t.Fatalf("decodeClaims accepted %q that encoding/json rejects: %v", b, wantErr)
		}
		return
	}
	if !reflect.DeepEqual(normalizeClaims(got), normalizeClaims(want)) {
		t.Fatalf("%q:\ngot  %+v\nwant %+v", b, got, want)
	}
}

func normalizeClaims(c tokenClaims) tokenClaims {
	if len(c.Audience) == 0 {
		c.Audience = nil
	}
	if len(c.Roles) == 0 {
		c.Roles = nil
	}
	if len(c.Groups) == 0 {
		c.Groups = nil
	}
	return c
}

func TestDecodeClaimsEscapedKey(t *testing.T) {
	checkDecodeClaims(t, []byte(`{"\u0069ss":"x","r\u006fles":["a"]}`))
	var c tokenClaims
	if err := decodeClaims([]byte(`{"\u0069ss":"x"}`), &c); err != nil || c.Issuer != "x" {
		t.Fatalf("escaped key: %v %q", err, c.Issuer)
	}
}
