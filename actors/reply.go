package actors

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/slc-go/slc/peer"
)

// Reply is a one-shot reply address: a PID whose first message arrives on a
// channel. The blocking Communicator uses it to wait for the facade's
// answer under a context, without a goroutine per request.
type Reply struct {
	sys *actor.ActorSystem
	pid *actor.PID
	ch  chan any
}

type replyProcess struct{ ch chan any }

func (p *replyProcess) SendUserMessage(_ *actor.PID, m any) {
	_, msg, _ := actor.UnwrapEnvelope(m)
	select {
	case p.ch <- msg:
	default: // only the first reply counts
	}
}

func (p *replyProcess) SendSystemMessage(*actor.PID, any) {}
func (p *replyProcess) Stop(*actor.PID)                   {}

// NewReply registers a reply address on sys. Close it when done.
func NewReply(sys *actor.ActorSystem) *Reply {
	p := &replyProcess{ch: make(chan any, 1)}
	pid, _ := sys.ProcessRegistry.Add(p, "reply$"+sys.ProcessRegistry.NextId())
	return &Reply{sys: sys, pid: pid, ch: p.ch}
}

// PID is the address to use as the request's sender.
func (r *Reply) PID() *actor.PID { return r.pid }

// Request sends msg to target with this reply address as its sender.
func (r *Reply) Request(target *actor.PID, msg any) {
	r.sys.Root.RequestWithCustomSender(target, msg, r.pid)
}

// Wait returns the reply, or ctx's error. A request that reached a stopped
// actor returns peer.ErrClosed.
func (r *Reply) Wait(ctx context.Context) (any, error) {
	select {
	case m := <-r.ch:
		if _, ok := m.(*actor.DeadLetterResponse); ok {
			return nil, peer.ErrClosed
		}
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close unregisters the reply address.
func (r *Reply) Close() { r.sys.ProcessRegistry.Remove(r.pid) }
