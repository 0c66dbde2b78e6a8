package discovery

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// AdvertiseError is the reason an advertiser actor fails: its
// registration (opening the sockets, probing for the name, announcing)
// failed, or its responder failed later. The actor panics with it, so
// that its supervisor restarts it, with backoff, to register again.
type AdvertiseError struct {
	Name    string
	Attempt int
	Err     error
}

func (e *AdvertiseError) Error() string {
	return fmt.Sprintf("slc: advertise %q: %v", e.Name, e.Err)
}

func (e *AdvertiseError) Unwrap() error { return e.Err }

// Report is an advertiser's report on one registration attempt: Err is
// nil when the service is announced. Attempt counts from 1 for each
// actor (restarts included).
type Report struct {
	Name       string
	Attempt    int
	Err        error
	Interfaces []string // where the service is announced, on success
}

// AdvertiserProps returns the props of an actor that advertises cfg
// until it stops. Run it under a supervisor that restarts failed
// children (slc's facade does, with backoff): every failure to register
// and every later failure of the responder panics with an
// *AdvertiseError, and each restart registers again. report, if set, is
// called with the outcome of every registration attempt and of every
// failure; it runs on the actor's goroutine and must not block.
func AdvertiserProps(cfg AdvertiseConfig, report func(Report)) *actor.Props {
	attempts := 0 // shared by the actor's incarnations
	return actor.PropsFromProducer(func() actor.Actor {
		return &advertiser{cfg: cfg, report: report, attempts: &attempts}
	})
}

type advertiser struct {
	cfg      AdvertiseConfig
	report   func(Report)
	attempts *int
	r        *Responder
}

// responderFailed carries a responder's failure to its actor.
type responderFailed struct {
	gen int // the attempt whose responder failed
	err error
}

// IgnoreDeadLetterLogging: a failure may be reported as the actor stops.
func (*responderFailed) IgnoreDeadLetterLogging() {}

func (a *advertiser) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		*a.attempts++
		self, root, gen := ctx.Self(), ctx.ActorSystem().Root, *a.attempts
		r, err := Advertise(a.cfg, func(err error) {
			root.Send(self, &responderFailed{gen: gen, err: err})
		})
		if err != nil {
			a.fail(err)
		}
		a.r = r
		a.say(Report{Name: a.cfg.Name, Attempt: gen, Interfaces: r.Interfaces()})
	case *responderFailed:
		if m.gen == *a.attempts && a.r != nil {
			a.r.Close(false)
			a.r = nil
			a.fail(m.err)
		}
	case *actor.Restarting:
		// Failed: the responder is closed already. A restart registers
		// again.
		if a.r != nil {
			a.r.Close(false)
			a.r = nil
		}
	case *actor.Stopping:
		if a.r != nil {
			a.r.Close(true) // goodbye: browsers forget the service now
			a.r = nil
		}
	}
}

func (a *advertiser) say(r Report) {
	if a.report != nil {
		a.report(r)
	}
}

// fail reports err and panics, for the supervisor.
func (a *advertiser) fail(err error) {
	a.say(Report{Name: a.cfg.Name, Attempt: *a.attempts, Err: err})
	panic(&AdvertiseError{Name: a.cfg.Name, Attempt: *a.attempts, Err: err})
}
