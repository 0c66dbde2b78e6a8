package bus

import (
	"context"
	"slices"
)

// Membership is the bus as a participant knows it: the serving
// participant, the server's epoch, and the members in rank order.
type Membership struct {
	// Server is the serving participant's name ("" during a changeover).
	Server string
	// Epoch counts the servers the bus has had: 1 for the first, and one
	// more at each changeover.
	Epoch uint64
	// Members are the participants, the server included, by rank.
	Members []ParticipantInfo
}

// ParticipantInfo describes a participant of the bus (introspection).
type ParticipantInfo struct {
	Name     string
	Instance uint64
	// Rank is the participant's join order: 1 for the participant that
	// founded the bus. A participant keeps it across changeovers, and the
	// lowest rank that can serve is elected when the server goes.
	Rank uint64
	Host string
	PID  int
	// Server: this participant serves the bus.
	Server bool
	// CanServe: this participant can bind the bus address.
	CanServe bool
	// Away: the server waits for this participant to come back.
	Away bool
	// Informers, Listeners and Servers are the scopes of the
	// participant's informers, listeners and local servers.
	Informers []Scope
	Listeners []Scope
	Servers   []Scope

	version uint64
}

// Membership returns the latest membership this participant knows, and a
// channel that is closed when it (or this participant's role) changes.
func (p *Participant) Membership() (Membership, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.view
	m.Members = slices.Clone(m.Members)
	return m, p.viewCh
}

// Participants lists the participants on the bus and their scopes, once
// this participant has joined (or ctx ends).
func (p *Participant) Participants(ctx context.Context) ([]ParticipantInfo, error) {
	if err := p.waitJoined(ctx); err != nil {
		return nil, err
	}
	m, _ := p.Membership()
	return m.Members, nil
}

func scopesFromWire(ss []string) []Scope {
	var out []Scope
	for _, s := range ss {
		if sc, err := ParseScope(s); err == nil {
			out = append(out, sc)
		}
	}
	return out
}

func infoFromWire(m *memberWire, server string) ParticipantInfo {
	return ParticipantInfo{
		Name: m.Name, Instance: m.Instance, Rank: m.Rank, Host: m.Host, PID: m.PID,
		Server: m.Name == server, CanServe: m.CanServe, Away: m.Away,
		Informers: scopesFromWire(m.Informers), Listeners: scopesFromWire(m.Listeners),
		Servers: scopesFromWire(m.Servers), version: m.Version,
	}
}

func membershipFromWire(m *controlMsg) Membership {
	v := Membership{Server: m.Server, Epoch: m.Epoch}
	for i := range m.Members {
		v.Members = append(v.Members, infoFromWire(&m.Members[i], m.Server))
	}
	return v
}
