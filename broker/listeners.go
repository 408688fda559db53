package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Kafka's security protocols (SecurityProtocol).
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// Listener is one entry of listeners or advertised.listeners:
// NAME://host:port. Protocol is the listener's security protocol from
// listener.security.protocol.map; New fills it when it is empty.
type Listener struct {
	Name     string // upper case, as Kafka normalises listener names
	Host     string // "" binds every interface
	Port     int
	Protocol string
}

// Addr is host:port.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

func (l Listener) String() string { return l.Name + "://" + l.Addr() }

// listenerRE is Kafka's endpoint syntax (SocketServerConfigs'
// uriParseExp): a name, an optional bracketed IPv6 host, a port.
var listenerRE = regexp.MustCompile(`^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)$`)

// parseListeners parses a comma-separated listeners value as Kafka's
// listenerListToEndPoints does: names must be unique.
func parseListeners(v string) ([]Listener, error) {
	var out []Listener
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		m := listenerRE.FindStringSubmatch(e)
		if m == nil {
			return nil, fmt.Errorf("unable to parse %q to a broker endpoint (want NAME://host:port)", e)
		}
		port, err := strconv.Atoi(m[3])
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("bad port in %q", e)
		}
		l := Listener{Name: strings.ToUpper(m[1]), Host: m[2], Port: port}
		if slices.ContainsFunc(out, func(o Listener) bool { return o.Name == l.Name }) {
			return nil, fmt.Errorf("each listener must have a different name, got %s twice in %q", l.Name, v)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listener in %q", v)
	}
	return out, nil
}

// defaultProtocolMap is Kafka's default listener.security.protocol.map:
// every protocol name maps to itself.
var defaultProtocolMap = map[string]string{
	ProtocolPlaintext: ProtocolPlaintext, ProtocolSSL: ProtocolSSL,
	ProtocolSASLPlaintext: ProtocolSASLPlaintext, ProtocolSASLSSL: ProtocolSASLSSL,
}

// parseProtocolMap parses listener.security.protocol.map (NAME:PROTOCOL,...).
func parseProtocolMap(v string) (map[string]string, error) {
	m := map[string]string{}
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		name, proto, ok := strings.Cut(e, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		if !ok || name == "" {
			return nil, fmt.Errorf("want NAME:PROTOCOL, got %q", e)
		}
		if _, known := defaultProtocolMap[proto]; !known {
			return nil, fmt.Errorf("unknown security protocol %q for listener %s (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", proto, name)
		}
		m[name] = proto
	}
	return m, nil
}

// parseNameList parses a comma-separated list of listener names.
func parseNameList(v string) []string {
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.ToUpper(strings.TrimSpace(n)); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// resolvedListeners returns the listeners with their protocols: Listeners,
// or one PLAINTEXT listener on Listen for configurations that only set
// that. Each problem names its key.
func (c *Config) resolvedListeners() ([]Listener, error) {
	ls := slices.Clone(c.Listeners)
	if len(ls) == 0 {
		host, port, err := net.SplitHostPort(c.Listen)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			return nil, fmt.Errorf("listeners: want host:port, got %q", c.Listen)
		}
		ls = []Listener{{Name: plaintextListener, Host: host, Port: p, Protocol: ProtocolPlaintext}}
	}
	protocols := c.ListenerProtocols
	if protocols == nil {
		protocols = defaultProtocolMap
	}
	var errs []error
	ports := map[int]string{}
	for i := range ls {
		l := &ls[i]
		if l.Protocol == "" {
			l.Protocol = protocols[l.Name]
		}
		if _, mapped := c.explicit["listener.security.protocol.map"]; l.Protocol == "" && !mapped && slices.Contains(c.controllerNames(), l.Name) {
			// Kafka maps a controller listener missing from the
			// default map to PLAINTEXT (effectiveListenerSecurityProtocolMap).
			l.Protocol = ProtocolPlaintext
		}
		if l.Protocol == "" {
			errs = append(errs, fmt.Errorf("listener.security.protocol.map: no security protocol defined for listener %s", l.Name))
		}
		if other, dup := ports[l.Port]; dup && l.Port != 0 {
			errs = append(errs, fmt.Errorf("listeners: each listener must have a different port, %s and %s both use %d", other, l.Name, l.Port))
		}
		ports[l.Port] = l.Name
	}
	for _, a := range c.AdvertisedListeners {
		if !slices.ContainsFunc(ls, func(l Listener) bool { return l.Name == a.Name }) {
			errs = append(errs, fmt.Errorf("advertised.listeners: listener %s is not among listeners", a.Name))
		}
	}
	if n := c.InterBrokerListenerName; n != "" && !c.controllerOnly() && !slices.ContainsFunc(ls, func(l Listener) bool { return l.Name == n }) {
		errs = append(errs, fmt.Errorf("inter.broker.listener.name: listener %s is not among listeners", n))
	}
	served := 0
	for _, l := range ls {
		if !slices.Contains(c.controllerNames(), l.Name) {
			served++
		}
	}
	if served == 0 && !c.controllerOnly() {
		errs = append(errs, errors.New("listeners: no listener for clients (every one is in controller.listener.names)"))
	}
	return ls, errors.Join(errs...)
}

// boundListener is a listener the broker accepts client connections on.
type boundListener struct {
	Listener                   // as bound (port 0 replaced by the chosen port)
	ln        net.Listener     // the socket
	advHost   string           // what Metadata, DescribeCluster and FindCoordinator answer
	advPort   int32            // on this listener
	tls       *tls.Config      // SSL and SASL_SSL
	sasl      *saslListener    // SASL_PLAINTEXT and SASL_SSL
	principal *principalMapper // SSL: ssl.principal.mapping.rules
}

func (l *boundListener) isSASL() bool { return strings.HasPrefix(l.Protocol, "SASL_") }

func (l *boundListener) isTLS() bool { return strings.HasSuffix(l.Protocol, "SSL") }

// bindListeners opens every listener that is not a controller's and works
// out what each advertises.
func (b *Broker) bindListeners(ls []Listener) error {
	for _, l := range ls {
		if slices.Contains(b.cfg.controllerNames(), l.Name) {
			continue // the quorum binds its own endpoint
		}
		bl := &boundListener{Listener: l}
		var err error
		if bl.isTLS() {
			if bl.tls, bl.principal, err = b.cfg.listenerTLS(l.Name, l.Protocol); err != nil {
				b.closeListeners()
				return err
			}
		}
		if bl.isSASL() {
			if bl.sasl, err = b.listenerSASL(l.Name); err != nil {
				b.closeListeners()
				return err
			}
		}
		if bl.ln = b.cfg.bound[l.Name]; bl.ln == nil {
			if bl.ln, err = net.Listen("tcp", l.Addr()); err != nil {
				b.closeListeners()
				return fmt.Errorf("listeners: %s: %w", l.Name, err)
			}
		}
		_, port, _ := net.SplitHostPort(bl.ln.Addr().String())
		bl.Port, _ = strconv.Atoi(port)
		bl.advHost, bl.advPort = b.advertised(bl, len(b.listeners) == 0)
		b.listeners = append(b.listeners, bl)
	}
	if len(b.listeners) == 0 {
		return nil // a controller-only node: the quorum binds its one endpoint
	}
	first := b.listeners[0]
	b.advHost, b.advPort = first.advHost, first.advPort
	return nil
}

// advertised is the endpoint clients are told to use for l: its entry in
// advertised.listeners, else AdvertisedAddr for the first listener (the
// Go field of single-listener configurations), else the bound address (a
// wildcard host becomes 127.0.0.1).
func (b *Broker) advertised(l *boundListener, first bool) (string, int32) {
	host, port := l.Host, l.Port
	if i := slices.IndexFunc(b.cfg.AdvertisedListeners, func(a Listener) bool { return a.Name == l.Name }); i >= 0 {
		host, port = b.cfg.AdvertisedListeners[i].Host, b.cfg.AdvertisedListeners[i].Port
	} else if b.cfg.AdvertisedAddr != "" && len(b.cfg.AdvertisedListeners) == 0 && first {
		h, p, _ := net.SplitHostPort(b.cfg.AdvertisedAddr)
		host = h
		port, _ = strconv.Atoi(p)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	if port == 0 {
		port = l.Port
	}
	return host, int32(port)
}

func (b *Broker) closeListeners() {
	for _, l := range b.listeners {
		l.ln.Close()
	}
}

// listener finds a bound listener by name; the first one when the name is
// unknown (handlers called without a connection).
func (b *Broker) listener(name string) *boundListener {
	for _, l := range b.listeners {
		if l.Name == name {
			return l
		}
	}
	return b.listeners[0]
}

// endpoint is the advertised host and port of the named listener, which
// Metadata, DescribeCluster and FindCoordinator answer a request with.
func (b *Broker) endpoint(listener string) (string, int32) {
	l := b.listener(listener)
	return l.advHost, l.advPort
}

// ListenerAddr is the bound address of the named listener ("" if the
// broker does not serve it).
func (b *Broker) ListenerAddr(name string) string {
	for _, l := range b.listeners {
		if l.Name == strings.ToUpper(name) {
			return l.ln.Addr().String()
		}
	}
	return ""
}
