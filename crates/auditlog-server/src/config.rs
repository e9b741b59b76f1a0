//! What the server needs to run. The binary builds it from flags and
//! environment; tests build it directly.

use std::sync::Arc;

use auditlog_domain::{Catalog, Clock, SystemClock};

use crate::writer::WriterConfig;

#[derive(Clone)]
pub struct ServerConfig {
    /// The event catalog, built-in plus operator extensions.
    pub catalog: Arc<Catalog>,
    /// Source of "now" for validation windows and received-at times.
    pub clock: Arc<dyn Clock>,
    /// Largest request body accepted. A full batch is 1000 events with up to
    /// 16 KiB of details each, so 20 MiB leaves room for the envelope.
    pub max_body_bytes: usize,
    pub writer: WriterConfig,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("catalog_events", &self.catalog.len())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            catalog: Arc::new(Catalog::builtin()),
            clock: Arc::new(SystemClock),
            max_body_bytes: 20 * 1024 * 1024,
            writer: WriterConfig::default(),
        }
    }
}
