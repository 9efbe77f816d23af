package caller

import (
	"errors"
	"testing"
)

const hostPayload = `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2023-10-12T20:13:49.640002Z","Next":"2023-10-12T20:18:49.640002Z","LastUpdated":"2023-10-12T20:13:49.640002Z"},"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"AutoTriggerFunction","UtcNow":"2023-10-12T20:13:49.640002Z","RandGuid":"4e77a6c2-0b6c-4b7e-9a1c-2f1e0d9c8b7a"}}}`

func TestParseInvocation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		body    string
		wantErr bool
		check   func(t *testing.T, inv Invocation)
	}{
		{"host payload", hostPayload, false, func(t *testing.T, inv Invocation) {
			if inv.Timer.IsPastDue || inv.Timer.ScheduleStatus == nil || inv.Timer.ScheduleStatus.Last != "2023-10-12T20:13:49.640002Z" {
				t.Errorf("timer %+v", inv.Timer)
			}
			if inv.MethodName != "AutoTriggerFunction" || inv.UtcNow == "" {
				t.Errorf("metadata %q %q", inv.MethodName, inv.UtcNow)
			}
		}},
		{"past due, no schedule status", `{"Data":{"timer":{"Schedule":{},"ScheduleStatus":null,"IsPastDue":true}},"Metadata":{}}`, false, func(t *testing.T, inv Invocation) {
			if !inv.Timer.IsPastDue || inv.Timer.ScheduleStatus != nil {
				t.Errorf("timer %+v", inv.Timer)
			}
		}},
		{"binding with another name is the only entry", `{"Data":{"myTimer":{"IsPastDue":true}}}`, false, func(t *testing.T, inv Invocation) {
			if !inv.Timer.IsPastDue {
				t.Error("IsPastDue lost")
			}
		}},
		{"retry context in metadata and unknown fields", `{"Data":{"timer":{"IsPastDue":false,"Extra":1}},"Metadata":{"RetryContext":{"RetryCount":1},"sys":"odd"}}`, false, nil},
		{"empty body", ``, true, nil},
		{"not JSON", `hello`, true, nil},
		{"truncated", `{"Data":`, true, nil},
		{"array", `[]`, true, nil},
		{"null", `null`, true, nil},
		{"no Data", `{"Metadata":{}}`, true, nil},
		{"Data not an object", `{"Data":"timer"}`, true, nil},
		{"Data empty", `{"Data":{}}`, true, nil},
		{"two bindings, none named timer", `{"Data":{"a":{},"b":{}}}`, true, nil},
		{"timer not an object", `{"Data":{"timer":42}}`, true, nil},
		{"timer null", `{"Data":{"timer":null}}`, true, nil},
		{"IsPastDue not a boolean", `{"Data":{"timer":{"IsPastDue":"yes"}}}`, true, nil},
		{"ScheduleStatus not an object", `{"Data":{"timer":{"ScheduleStatus":7}}}`, true, nil},
		{"trailing data", hostPayload + `{}`, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := ParseInvocation([]byte(tc.body))
			if tc.wantErr {
				if err == nil || !errors.Is(err, ErrMalformedInvocation) {
					t.Fatalf("ParseInvocation(%q) = %v; want ErrMalformedInvocation", tc.body, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseInvocation: %v", err)
			}
			if tc.check != nil {
				tc.check(t, inv)
			}
		})
	}
}

func FuzzParseInvocation(f *testing.F) {
	for _, s := range []string{hostPayload, `{"Data":{"timer":{"IsPastDue":true}}}`, `{"Data":{}}`, `[]`, `{"Data":{"timer":{"ScheduleStatus":{"Last":1}}}}`, ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		inv, err := ParseInvocation(body)
		if err != nil && !errors.Is(err, ErrMalformedInvocation) {
			t.Fatalf("error does not wrap ErrMalformedInvocation: %v", err)
		}
		if err != nil && inv.Timer.IsPastDue {
			t.Fatal("IsPastDue set on error")
		}
	})
}
