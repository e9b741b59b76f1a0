//! `auditlog bench --postgres URL`: the PostgreSQL measurements.

use crate::backend::AnyError;
use crate::cli::BenchArgs;

pub async fn run_cli(args: &BenchArgs) -> Result<(), AnyError> {
    let _ = args;
    Err("the PostgreSQL benchmark is not available in this build yet".into())
}
