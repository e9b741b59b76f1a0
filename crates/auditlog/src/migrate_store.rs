//! `auditlog migrate-store`: copying an installation between stores.

use crate::backend::AnyError;
use crate::cli::MigrateStoreArgs;

pub async fn run(args: MigrateStoreArgs) -> Result<(), AnyError> {
    Err(format!(
        "copying {} to {} is not available in this build yet",
        args.from, args.to
    )
    .into())
}
