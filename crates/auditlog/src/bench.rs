//! `auditlog bench`: measured in `bench` module work in progress.

use crate::backend::AnyError;
use crate::cli::BenchArgs;

pub async fn run(_args: BenchArgs) -> Result<(), AnyError> {
    Err("the benchmark is being written".into())
}
