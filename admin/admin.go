package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/kafkit/kafkit/internal/client"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client is an admin client for one Kafka cluster, safe for concurrent use.
type Client struct {
	cfg Config
	cl  *client.Client
}

// New validates cfg and connects: it fails if no bootstrap server answers
// before ctx ends.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.BootstrapControllers) > 0 {
		cl, err := client.NewForControllers(cfg.clientConfig())
		if err != nil {
			return nil, err
		}
		c := &Client{cfg: cfg, cl: cl}
		// Connect now, as with brokers: a wrong address fails here.
		if _, _, _, err := cl.Controllers(ctx); err != nil {
			cl.Close()
			return nil, fmt.Errorf("bootstrap from controllers %v: %w", cfg.BootstrapControllers, err)
		}
		return c, nil
	}
	cl, err := client.New(ctx, cfg.clientConfig())
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, cl: cl}, nil
}

// Close fails calls still waiting for an answer, closes the connections and
// waits for the client's goroutines. It is safe to call more than once.
func (c *Client) Close() error { return c.cl.Close() }

// retry runs fn until it succeeds, fails with an error that is not worth
// retrying (client.IsRetriable), or ctx ends.
func (c *Client) retry(ctx context.Context, fn func() error) error {
	bo := client.NewBackoff(c.cfg.RetryBackoff, c.cfg.RetryBackoffMax)
	for {
		err := fn()
		if err == nil || !client.IsRetriable(err) {
			return err
		}
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
	}
}

// toController sends req to the cluster's controller, which must answer
// topic creation, deletion and partition changes; any broker when the
// controller is unknown (KRaft brokers forward such requests).
func (c *Client) toController(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if len(c.cfg.BootstrapControllers) > 0 {
		// The active controller answers; a standby would say
		// NOT_LEADER_OR_FOLLOWER or NOT_CONTROLLER.
		_, active, _, err := c.cl.Controllers(ctx)
		if err != nil {
			return nil, err
		}
		if active < 0 {
			return nil, fmt.Errorf("no active controller (an election is under way?): %w", kerr.NotController)
		}
		return c.cl.RequestBroker(ctx, active, req)
	}
	md, err := c.cl.Metadata(ctx)
	if err == nil && md.ControllerID >= 0 {
		if _, known := md.Brokers[md.ControllerID]; known {
			return c.cl.RequestBroker(ctx, md.ControllerID, req)
		}
	}
	return c.cl.Request(ctx, req)
}

// toCoordinator sends req to group's coordinator.
func (c *Client) toCoordinator(ctx context.Context, group string, req kmsg.Request) (kmsg.Response, error) {
	id, err := c.cl.FindCoordinator(ctx, 0, group)
	if err != nil {
		return nil, err
	}
	return c.cl.RequestBroker(ctx, id, req)
}
