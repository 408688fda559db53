// Package auth holds the broker's security decisions, with Apache Kafka's
// semantics and no dependency on the broker package: who a connection is
// (principals and the SASL server mechanisms), what it may do (the ACL
// authorizer) and how fast (client quotas). Requests and responses are
// kmsg types; nothing here reads a socket, writes a file or starts a
// goroutine, and every clock is passed in.
//
// SASL: NewPlainServer, NewSCRAMServer (SCRAM-SHA-256/512) and
// NewOAuthBearerServer (Kafka's unsecured JWS validator) return a Server,
// a state machine stepped with each client token; SASLConfig.NewServer
// picks one by the mechanism a SaslHandshake names. The broker's connection
// must run SaslServerAuthenticator's state machine around it: one
// ApiVersions, then SaslHandshake (unknown mechanism: UNSUPPORTED_SASL_MECHANISM
// with the enabled list, then close), then SaslAuthenticate rounds (or raw
// v0 tokens) fed to Step, answering each challenge; any other request
// before Step reports done closes the connection. A Step error that
// errors.Is kerr.SaslAuthenticationFailed is an *AuthError: answer error
// code 58 with its Message (which never says whether the user exists),
// log its Detail, and close after connection.failed.authentication.delay.ms.
// An error that errors.Is kerr.IllegalSaslState means a token after the end.
// The OAUTHBEARER server also has Expiry() time.Time (the token's exp),
// which bounds SessionLifetimeMs for KIP-368 re-authentication, whose
// timing is the broker's.
//
// Credentials: SCRAMStore keeps salt, StoredKey, ServerKey and iterations
// per user and mechanism (never a password); its Lookup feeds
// NewSCRAMServer and its Describe and Alter answer
// DescribeUserScramCredentials and AlterUserScramCredentials.
// ParsePlainJAAS and ParseOAuthBearerJAAS read the listener's
// sasl.jaas.config options (through props.JAASOptions, the parser the
// clients use too).
//
// Authorization: an Authorizer (NewAuthorizer with super.users and
// allow.everyone.if.no.acl.found) answers Authorize and
// AuthorizedOperations with StandardAuthorizer's rules and CreateAcls,
// DescribeAcls and DeleteAcls. A nil *Authorizer (no authorizer.class.name)
// allows everything. Which operation on which resource each API checks, in
// what order, and the per-API error codes are the broker's, as are the
// request-level checks (ALTER on the cluster for ACL changes, DESCRIBE for
// DescribeAcls, and so on) in front of the functions here.
//
// Quotas: Quotas answers DescribeClientQuotas and AlterClientQuotas,
// resolves the quota that applies to a user and client-id (Limit) or an ip
// (IPLimit) by Kafka's precedence, and Record returns the throttle time of
// a request from rates sampled over 11 windows of 1 s. The broker must
// send that time as ThrottleMillis at once and stop reading the
// connection for it (KIP-219), must not count long-poll waits, and calls
// ExpireIdle now and then to forget idle clients' rates.
//
// RecordConnection does the same for connection_creation_rate per ip;
// AuthorizeByResourceType is InitProducerId's "WRITE on any topic".
//
// The broker wires all of it: its listeners, TLS and principal mapping
// (broker/tls.go), the SaslServerAuthenticator state machine around Server
// (broker/sasl_conn.go), the SCRAM credentials' durability
// (broker/scram_credentials.go, through Credentials and Replace), and the
// checks in front of its handlers with ACLs and quotas stored in its data
// directory (broker/authz.go, broker/quotas.go).
package auth
