// Package tokencache obtains and caches OAuth access tokens from any
// [azcore.TokenCredential] (normally a managed identity) so that callers never
// stampede the identity endpoint, never wait for the network while a valid token
// exists, and keep working through identity-endpoint outages for as long as the
// cached token is valid.
//
// A [Cache] wraps a credential and is itself an [azcore.TokenCredential], so it
// can be handed unchanged to any Azure SDK client. It provides:
//
//   - single flight: N concurrent requests for a missing token cause exactly one
//     credential call; each waiter honours its own context;
//   - refresh ahead, off the hot path: a background refresh starts at the
//     token's refresh point (the credential's RefreshOn when reported, else half
//     the lifetime for tokens living longer than 2 hours, else 5 minutes before
//     expiry; minus a small jitter);
//   - a safety margin: a token expiring within [Options.SafetyMargin] is never
//     handed out;
//   - stale while erroring: failed refreshes are retried with exponential
//     backoff and jitter (honouring Retry-After on 429/503) while the cached token
//     keeps being served; with no usable token, the failure is remembered per
//     scope for the same backoff and shared by every caller, so a failing
//     identity endpoint is not hammered;
//   - unusable answers refused: an empty or malformed token, or (for the
//     credentials built here) one labelled for another resource, is a failure
//     and never cached; a token is kept no longer than its own exp claim (for
//     a JWT) and 30 days, whatever expiry the credential reports;
//   - [Cache.Invalidate] for a resource's 401, rate-limited per entry; the old
//     token stays in service until a new one is in hand; new claims values
//     (claims challenges) for the same scopes are rate-limited the same way;
//   - [Cache.Transport], an [http.RoundTripper] that adds the bearer token and
//     sends it only to the origin of the request it was given (a redirect to
//     another origin is refused);
//   - entries nobody asks for any more are evicted, and at most [MaxEntries]
//     distinct requests are cached at once;
//   - [Cache.Stats] for metrics exporters and an optional [slog.Logger].
//
// Tokens never appear in logs or errors: error messages are redacted (the
// IDENTITY_HEADER secret, token fields and token-shaped strings) and kept to
// one bounded line.
//
// [NewManagedIdentityCredential] and [NewCredential] build the credentials the
// project uses: managed identity in Azure, an explicit development chain
// (managed identity, workload identity, Azure CLI) for local runs.
package tokencache
