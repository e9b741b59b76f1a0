//! Handing each read of the log a handler answered to the read recorder
//! (`workers::read_recorder`), as the principal who made it.

use auditlog_domain::read_audit::Read;

use crate::http::auth::Principal;
use crate::http::state::AppState;

/// Records `read` by `principal` unless reads are not recorded or it
/// belongs to a look already recorded; returns at once.
pub fn record(state: &AppState, principal: &Principal, read: Read) {
    if !state.config.record_reads {
        return;
    }
    let now = state.clock.now();
    state.reads.note(
        principal.org.id,
        principal.submitted_by().to_text(),
        read,
        now,
        |read| {
            let (resource, details) = read.recorded();
            principal.entry(now, "audit_log.viewed", resource, details)
        },
    );
}
