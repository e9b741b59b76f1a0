//! Named fault points: places where the crash tests make the process die
//! on purpose, to prove that a crash there loses nothing acknowledged and
//! that deliveries resume.
//!
//! They are the `fail` crate's fail points, configured from the
//! `FAILPOINTS` environment variable (`name=action;…`, for example
//! `writer::after_commit=20*off->return`). The action `return` ends the
//! process on the spot, as a power cut or `SIGKILL` would; `sleep(ms)`,
//! `delay(ms)` and `panic` work as the crate documents. They exist only in
//! builds with the `failpoints` feature, which the test builds turn on; in
//! a release build [`point`] is empty and `FAILPOINTS` is ignored.

/// After the writer's transaction has committed, before any caller hears
/// of it: the entries are durable but nobody was told.
pub const AFTER_COMMIT: &str = "writer::after_commit";
/// After the dispatcher's claims have committed, before anything is sent:
/// the deliveries are leased to a process that is gone.
pub const AFTER_CLAIM: &str = "dispatcher::after_claim";
/// After receivers have answered, before the attempts are recorded: sent,
/// but not known to have been.
pub const AFTER_SEND: &str = "dispatcher::after_send";

/// The exit status of a process ended at a fault point, so tests can tell
/// it from any other death.
pub const EXIT_STATUS: i32 = 86;

/// Reads `FAILPOINTS`; call once at start.
pub fn configure_from_env() {
    #[cfg(feature = "failpoints")]
    {
        // The scenario lives as long as the process.
        std::mem::forget(fail::FailScenario::setup());
        if std::env::var_os("FAILPOINTS").is_some() {
            tracing::warn!(points = ?fail::list(), "fault points configured");
        }
    }
}

/// Evaluates the fault point `name`.
#[inline]
pub fn point(name: &'static str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        eprintln!("fault point {name}: ending the process");
        std::process::exit(EXIT_STATUS);
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
