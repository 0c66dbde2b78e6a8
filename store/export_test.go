package store

// crash ends st as a killed process would: no final commit, no sync. What
// was committed is in the file; consumption marks are in the mapped log.
func (st *Store) crash() {
	st.mu.Lock()
	st.closed = true
	st.failed = ErrClosed // the committer's last round writes nothing
	st.wakeRoomLocked()
	st.wakeLogLocked()
	st.mu.Unlock()
	close(st.stop)
	st.wg.Wait()
	st.clog.close()
	st.db.Close()
}
