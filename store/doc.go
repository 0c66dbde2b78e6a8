// Package store is slc's durable state: with it a node keeps its promise
// of exactly-once delivery across crashes and restarts of its process.
// Users turn it on with slc.WithStore(dir); this package is the
// implementation, and Open and Inspect are its public entry points.
//
// A store keeps, in one directory:
//
//   - the node's name, its instance ID (the same in every run, so peers
//     see a restart as the same node coming back) and a reservation of
//     message IDs, so that no ID is ever issued twice;
//   - every frame of every message the node sent that a peer has not
//     acknowledged, with the address the peer is dialed at. It is deleted
//     once the peer acknowledges it. A restarted node re-creates each such
//     session, reconnects and re-sends; the peer drops what it already has;
//   - per sender, the highest message ID placed in the mailbox (so a
//     re-sent message is dropped after a restart), every message placed in
//     the mailbox that the application has not consumed, and the chunks of
//     a large message partly received (the sender released them).
//
// The database is bbolt (go.etcd.io/bbolt): one file, slc.db, a B+tree
// with copy-on-write pages and a two-phase commit, so a crash never leaves
// it half-written. Every value also carries a CRC-32C, so damage to a
// value is found when it is read. Writes are group commits: one goroutine
// commits whatever accumulated while the previous commit ran, so
// concurrent senders, and all the messages a connection delivers at once,
// share one commit and one fsync. Sync chooses when a commit reaches the
// disk: SyncBatch (fsync every commit, the default), SyncInterval, or
// SyncNever.
//
// Consumption (the application taking a message from the mailbox) is
// recorded in a second file, consumed.log: a memory-mapped log of 24-byte
// records, written before Receive returns. A store to shared mapped memory
// survives the process at once (the operating system holds the page), so
// a process crash does not deliver a consumed message again; the records
// are folded into the database at the next commit (at most
// DefaultCheckpoint later), and only then are they on disk.
//
// Open checks the store: a damaged or truncated file fails Open with a
// *CorruptError that lists each damaged part, what is lost if it is set
// aside, and what is intact; nothing is changed. Options.Salvage opens it
// anyway, moving the damaged values aside. Inspect reads a store without
// changing it (the slc store inspect command).
//
// The store is bounded by Options.MaxBytes of unacknowledged outbound
// messages: past it, Send blocks (or fails when its context ends) exactly
// as it does at the BufferCap limit. Nothing is ever trimmed.
//
// docs/durability.md states the guarantees of each policy and the limits.
package store
