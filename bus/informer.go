package bus

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
)

// Informer publishes events on a scope (or its subscopes). Create one
// with NewInformer.
type Informer struct {
	p        *Participant
	scope    Scope
	reliable bool
	closed   atomic.Bool
}

// NewInformer returns an informer on scope.
func (p *Participant) NewInformer(scope string, opts ...InformerOption) (*Informer, error) {
	sc, err := parseUserScope(scope)
	if err != nil {
		return nil, err
	}
	ic := informerConfig{reliability: p.cfg.qos.Reliability}
	for _, o := range opts {
		o(&ic)
	}
	i := &Informer{p: p, scope: sc, reliable: ic.reliability == Reliable}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	p.informers[i] = struct{}{}
	p.scopesChangedLocked()
	return i, nil
}

// Scope returns the informer's scope.
func (i *Informer) Scope() Scope { return i.scope }

// Close stops the informer. Events it published are still delivered.
func (i *Informer) Close() error {
	if i.closed.Swap(true) {
		return nil
	}
	p := i.p
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.informers, i)
	if !p.closed {
		p.scopesChangedLocked()
	}
	return nil
}

// Publish publishes data on the informer's scope and returns the event's
// ID. data is converted by the participant's converters. A reliable
// informer waits while the participant's window is full, up to ctx.
func (i *Informer) Publish(ctx context.Context, data any) (EventID, error) {
	e := &Event{Data: data}
	err := i.PublishEvent(ctx, e)
	return e.ID, err
}

// PublishEvent publishes e. Its Scope is the informer's scope when left
// zero, else it must be that scope or a subscope. Method, Causes and the
// user infos and times are sent as they are; a zero CreateTime is set to
// now. Data is converted by the participant's converters, unless it is a
// []byte and Schema is set: then the bytes go as they are, under that
// schema. PublishEvent sets e's ID, Scope, Schema and CreateTime.
func (i *Informer) PublishEvent(ctx context.Context, e *Event) error {
	p := i.p
	if i.closed.Load() {
		return ErrClosed
	}
	scope := e.Scope
	if scope.IsRoot() {
		scope = i.scope
	}
	if !scope.IsSubScopeOf(i.scope) {
		return fmt.Errorf("bus: publish on %s: not a subscope of the informer's scope %s", scope, i.scope)
	}
	if scope.IsReserved() {
		return fmt.Errorf("%w: %s", ErrReservedScope, scope)
	}
	// The log copies the data as it encodes the event: bytes need no
	// copy of their own before.
	var schema string
	var data []byte
	if b, ok := e.Data.([]byte); ok && (e.Schema != "" || p.cfg.conv.bytesBuiltin()) {
		schema, data = e.Schema, b
		if schema == "" {
			schema = SchemaBytes
		}
	} else {
		var err error
		if schema, data, err = p.cfg.conv.Encode(e.Data); err != nil {
			return fmt.Errorf("bus: publish on %s: %w", scope, err)
		}
	}
	create := e.Meta.CreateTime
	if create.IsZero() {
		create = p.now()
	}
	oe := outEvent{
		reliable: i.reliable, scope: scope.String(), schema: schema, method: e.Method, create: create,
		causes: e.Causes, infos: e.Meta.UserInfos, times: e.Meta.UserTimes, data: data,
	}
	var local func(uint64)
	if ls := p.matchLocal(oe.scope); len(ls) > 0 {
		// Local listeners get what remote ones get: the data through the
		// converters, and copies of the slices and maps. The event is
		// made here, outside the log's lock: converters are user code.
		le := &Event{
			ID: EventID{Sender: p.name, Instance: p.instance}, Scope: scope, Method: e.Method,
			Schema: schema, Causes: slices.Clone(e.Causes),
			Meta: MetaData{CreateTime: create, UserInfos: maps.Clone(e.Meta.UserInfos), UserTimes: maps.Clone(e.Meta.UserTimes)},
		}
		if p.cfg.conv.canonical(schema, e.Data) {
			le.Data = e.Data
		} else if v, _, err := p.cfg.conv.Decode(schema, data); err != nil {
			le.Data, le.Err = slices.Clone(data), err
		} else {
			le.Data = v
		}
		reliable := i.reliable
		local = func(seq uint64) {
			le.ID.Seq = seq
			le.Meta.SendTime = p.now()
			le.Meta.ReceiveTime = p.now()
			dispatchLocal(le, reliable, ls)
		}
	}
	seq, err := p.out.publish(ctx, &oe, local)
	if err != nil {
		return err
	}
	e.ID = EventID{Sender: p.name, Instance: p.instance, Seq: seq}
	e.Scope, e.Schema, e.Meta.CreateTime = scope, schema, create
	return nil
}
