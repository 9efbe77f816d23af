package caller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// TimerBinding is the name of the timer binding in AutoTriggerFunction/function.json; the
// host sends the timer under this key of the invocation's Data.
const TimerBinding = "timer"

// FunctionName is the timer function's name (its folder); the host POSTs invocations to
// "/" + FunctionName.
const FunctionName = "AutoTriggerFunction"

// MaxInvocationBytes bounds the invocation request body the handler reads.
const MaxInvocationBytes = 1 << 20

// ErrMalformedInvocation is wrapped by every error of [ParseInvocation].
var ErrMalformedInvocation = errors.New("caller: malformed invocation payload")

// InvocationRequest is the Functions host's custom-handler invocation request body:
// Data holds one entry per input binding (here the timer), Metadata the trigger metadata.
type InvocationRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// TimerInfo is the timer binding's value.
type TimerInfo struct {
	// Schedule is the host's schedule description (e.g. {"AdjustForDST":true}).
	Schedule json.RawMessage `json:"Schedule,omitempty"`
	// ScheduleStatus is nil when the host does not monitor the schedule.
	ScheduleStatus *ScheduleStatus `json:"ScheduleStatus"`
	// IsPastDue reports a late run (e.g. after a restart); it still runs.
	IsPastDue bool `json:"IsPastDue"`
}

// ScheduleStatus is the timer's last/next occurrences as the host formats them.
type ScheduleStatus struct {
	Last        string `json:"Last,omitempty"`
	Next        string `json:"Next,omitempty"`
	LastUpdated string `json:"LastUpdated,omitempty"`
}

// Invocation is a parsed timer invocation.
type Invocation struct {
	Timer TimerInfo
	// MethodName and UtcNow come from Metadata.sys when present.
	MethodName string
	UtcNow     string
}

// InvocationResponse is the custom-handler invocation response: Outputs keyed by output
// binding (none here), Logs written to the invocation log, and ReturnValue (a [Report]).
type InvocationResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue *Report        `json:"ReturnValue"`
}

// ParseInvocation parses a timer invocation body. It needs a JSON object whose Data
// holds the timer binding (named TimerBinding, or the only entry of Data) as a JSON
// object; IsPastDue, when present, must be a boolean and ScheduleStatus an object or
// null. Anything else is an error wrapping ErrMalformedInvocation that says what is wrong.
func ParseInvocation(body []byte) (Invocation, error) {
	inv, err := parseInvocation(body)
	if err != nil {
		return Invocation{}, err
	}
	return inv, nil
}

func parseInvocation(body []byte) (Invocation, error) {
	var inv Invocation
	var req InvocationRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return inv, fmt.Errorf("%w: body is not a JSON object: %v", ErrMalformedInvocation, jsonErr(err))
	}
	if dec.More() {
		return inv, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformedInvocation)
	}
	if _, err := dec.Token(); err != io.EOF {
		return inv, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformedInvocation)
	}
	if req.Data == nil {
		return inv, fmt.Errorf("%w: \"Data\" is missing; expected {\"Data\":{%q:{...}},\"Metadata\":{...}}", ErrMalformedInvocation, TimerBinding)
	}
	raw, ok := req.Data[TimerBinding]
	if !ok {
		if len(req.Data) != 1 {
			return inv, fmt.Errorf("%w: \"Data\" has no %q timer binding", ErrMalformedInvocation, TimerBinding)
		}
		for _, v := range req.Data {
			raw = v
		}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return inv, fmt.Errorf("%w: the timer binding must be a JSON object", ErrMalformedInvocation)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return inv, fmt.Errorf("%w: timer binding: %v", ErrMalformedInvocation, jsonErr(err))
	}
	if v, ok := fields["IsPastDue"]; ok {
		if err := json.Unmarshal(v, &inv.Timer.IsPastDue); err != nil {
			return inv, fmt.Errorf("%w: timer binding: IsPastDue must be true or false", ErrMalformedInvocation)
		}
	}
	if v, ok := fields["ScheduleStatus"]; ok && !isNull(v) {
		var st map[string]any
		if err := json.Unmarshal(v, &st); err != nil {
			return inv, fmt.Errorf("%w: timer binding: ScheduleStatus must be an object or null", ErrMalformedInvocation)
		}
		inv.Timer.ScheduleStatus = &ScheduleStatus{Last: str(st["Last"]), Next: str(st["Next"]), LastUpdated: str(st["LastUpdated"])}
	}
	if v, ok := fields["Schedule"]; ok && !isNull(v) {
		inv.Timer.Schedule = v
	}
	if sys, ok := req.Metadata["sys"]; ok {
		var m map[string]any
		if json.Unmarshal(sys, &m) == nil {
			inv.MethodName, inv.UtcNow = str(m["MethodName"]), str(m["UtcNow"])
		}
	}
	return inv, nil
}

func isNull(b json.RawMessage) bool { return string(bytes.TrimSpace(b)) == "null" }

func str(v any) string {
	s, _ := v.(string)
	return s
}

// jsonErr shortens encoding/json errors (they never quote much input, but stay terse).
func jsonErr(err error) string {
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	s := err.Error()
	s = strings.TrimPrefix(s, "json: ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
