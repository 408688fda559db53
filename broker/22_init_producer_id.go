package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkit/kafkit/internal/storage"
)

// InitProducerId: v0-5 (v2+ flexible, v3 KIP-360 epoch bump fields). An
// idempotent producer (no transactional.id) always gets a fresh producer id,
// as from Kafka's ProducerIdManager.
var initProducerIDVersions = versions{0, 5}

func (b *Broker) handleInitProducerID(rc *reqCtx, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		return b.initTransactionalProducer(rc, req, resp), nil
	}
	id, err := b.pids.next()
	if err != nil {
		b.log.Error("allocating a producer id", "err", err)
		resp.ErrorCode = kerr.UnknownServerError.Code
		if b.cluster != nil {
			// The controller did not hand out a block in time (Kafka's
			// RPCProducerIdManager: "waiting for next block"): retriable.
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		}
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

// producerIDs hands out producer ids that stay unique across restarts: it
// reserves blocks of pidBlock ids by durably recording the end of the
// current block before using any id of it (Kafka reserves blocks through
// its controller the same way).
type producerIDs struct {
	fs   storage.FS
	path string

	mu       sync.Mutex // guards nextID and blockEnd
	nextID   int64
	blockEnd int64
	// allocate, on a cluster, takes the next block from the active
	// controller (AllocateProducerIDs) instead of the file: ids are unique
	// across the brokers.
	allocate func() (start int64, err error)
}

const pidBlock = 1000

func openProducerIDs(fsys storage.FS, dir string) (*producerIDs, error) {
	p := &producerIDs{fs: fsys, path: dir + "/producer-id-block"}
	data, err := readFile(fsys, p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", p.path, err)
	case len(data) != 8:
		return nil, fmt.Errorf("reading %s: want 8 bytes, got %d", p.path, len(data))
	default:
		p.nextID = int64(binary.BigEndian.Uint64(data))
		p.blockEnd = p.nextID
	}
	return p, nil
}

func (p *producerIDs) next() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nextID == p.blockEnd && p.allocate != nil {
		start, err := p.allocate()
		if err != nil {
			return 0, err
		}
		p.nextID, p.blockEnd = start, start+pidBlock
	}
	if p.nextID == p.blockEnd {
		end := p.blockEnd + pidBlock
		if err := writeFileAtomic(p.fs, p.path, binary.BigEndian.AppendUint64(nil, uint64(end))); err != nil {
			return 0, err
		}
		p.blockEnd = end
	}
	id := p.nextID
	p.nextID++
	return id, nil
}
