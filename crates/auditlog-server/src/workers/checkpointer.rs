//! Signing checkpoints of every organization's Merkle tree: periodically
//! while entries arrive, and on demand (a reader asking for the latest, an
//! export with proofs).
//!
//! Before a size is signed, its root is proved consistent with the latest
//! checkpoint already signed, from the stored tree: if someone rewrote
//! history in the database, the service refuses to sign and says so,
//! rather than vouching for a log that contradicts what it signed before.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use auditlog_domain::checkpoint::{self, Checkpoint, Origin, SigningKey};
use auditlog_domain::merkle::{self, Hash, MissingNode, NodeId, NodeRef};
use auditlog_domain::store::{Job, StoredCheckpoint};
use auditlog_domain::{Clock, Org, OrgId, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct CheckpointConfig {
    /// The service's signing key; its name is the log name.
    pub key: Arc<SigningKey>,
    /// How often organizations with new entries get a new checkpoint.
    pub interval: Duration,
}

impl std::fmt::Debug for CheckpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointConfig")
            .field("key", &self.key.verifier_key().to_string())
            .field("interval", &self.interval)
            .finish()
    }
}

impl Default for CheckpointConfig {
    /// A key that lives as long as the process: right for tests; the
    /// binary always supplies a persistent one.
    fn default() -> Self {
        Self {
            key: Arc::new(SigningKey::generate("auditlog").expect("a valid key name")),
            interval: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
pub struct Checkpointer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: CheckpointConfig,
    metrics: Metrics,
}

/// What keeps a checkpoint or a proof from being put together.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored tree or checkpoints contradict themselves (a node
    /// missing, a log inconsistent with its checkpoint): a bug or
    /// tampering, never the caller's doing.
    #[error("{0}")]
    Broken(String),
}

/// Stored tree nodes, read once, from which proofs, leaves and roots are
/// put together: a request or an export page asks for every node it needs
/// in one read.
pub struct TreeView {
    nodes: HashMap<NodeId, Hash>,
}

fn missing(m: MissingNode) -> ProofError {
    ProofError::Broken(format!("the Merkle tree lacks node {:?}", m.0))
}

impl TreeView {
    pub async fn load(
        store: &dyn Store,
        org: OrgId,
        ids: impl IntoIterator<Item = NodeId>,
    ) -> Result<Self, ProofError> {
        let mut ids: Vec<NodeId> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(Self {
            nodes: store.tree_nodes(org, ids).await?,
        })
    }

    pub fn proof(&self, refs: &[NodeRef]) -> Result<Vec<Hash>, ProofError> {
        merkle::assemble(refs, |id| self.nodes.get(&id).copied()).map_err(missing)
    }

    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        merkle::root_at(size, |id| self.nodes.get(&id).copied()).map_err(missing)
    }

    pub fn node(&self, id: NodeId) -> Result<Hash, ProofError> {
        self.nodes.get(&id).copied().ok_or(missing(MissingNode(id)))
    }
}

/// Proof hashes from stored nodes, in one read.
pub async fn proof_hashes(store: &dyn Store, org: OrgId, refs: &[NodeRef]) -> Result<Vec<Hash>, ProofError> {
    TreeView::load(store, org, merkle::needed_nodes(refs))
        .await?
        .proof(refs)
}

/// The tree's root at `size`, from stored nodes.
pub async fn root_at(store: &dyn Store, org: OrgId, size: u64) -> Result<Hash, ProofError> {
    TreeView::load(store, org, merkle::frontier_ids(size)).await?.root(size)
}

impl Checkpointer {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: CheckpointConfig) -> Self {
        Self {
            store,
            clock,
            config,
            metrics: Metrics::default(),
        }
    }

    /// Counts signed checkpoints in `metrics`.
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics, ..self }
    }

    pub fn key(&self) -> &SigningKey {
        &self.config.key
    }

    pub fn origin(&self, org: &Org) -> Result<Origin, ProofError> {
        Origin::for_org(self.config.key.name(), &org.slug)
            .map_err(|e| ProofError::Broken(format!("no checkpoint origin for {:?}: {e}", org.slug)))
    }

    /// The checkpoint of `size`, signed now unless it already exists.
    pub async fn at_size(&self, org: &Org, size: u64) -> Result<StoredCheckpoint, ProofError> {
        if let Some(cp) = self.store.checkpoint(org.id, Some(size)).await? {
            return Ok(cp);
        }
        let root = root_at(self.store.as_ref(), org.id, size).await?;
        if let Some(latest) = self.store.checkpoint(org.id, None).await? {
            self.check_consistent(org, &latest, size, &root).await?;
        }
        let note = checkpoint::sign(
            &Checkpoint {
                origin: self.origin(org)?,
                size,
                root,
            },
            &self.config.key,
        );
        let cp = StoredCheckpoint {
            size,
            root,
            note,
            signed_at: self.clock.now(),
        };
        self.store.save_checkpoint(org.id, cp.clone()).await?;
        self.metrics.checkpoints_signed.inc();
        // Two signers racing for one size: the first stored stands.
        Ok(self.store.checkpoint(org.id, Some(size)).await?.unwrap_or(cp))
    }

    /// The latest checkpoint, covering the whole log as it is now.
    pub async fn current(&self, org: &Org) -> Result<StoredCheckpoint, ProofError> {
        let size = self.store.log_size(org.id).await? as u64;
        self.at_size(org, size).await
    }

    /// Refuses a root that contradicts an earlier (or later) signed one.
    async fn check_consistent(
        &self,
        org: &Org,
        signed: &StoredCheckpoint,
        size: u64,
        root: &Hash,
    ) -> Result<(), ProofError> {
        let (first, second, root1, root2) = if signed.size <= size {
            (signed.size, size, signed.root, *root)
        } else {
            (size, signed.size, *root, signed.root)
        };
        let refs = merkle::consistency_proof_nodes(first, second)
            .map_err(|e| ProofError::Broken(format!("consistency proof {first}→{second}: {e}")))?;
        let proof = proof_hashes(self.store.as_ref(), org.id, &refs).await?;
        merkle::verify_consistency(first, second, &root1, &root2, &proof).map_err(|e| {
            tracing::error!(
                org = %org.slug, signed = signed.size, size, error = %e,
                "REFUSING TO SIGN: the stored log contradicts a signed checkpoint; it may have been tampered with"
            );
            ProofError::Broken(format!(
                "the log of {:?} is not consistent with its checkpoint at size {}; nothing was signed",
                org.slug, signed.size
            ))
        })
    }

    /// One round: a checkpoint for every organization whose log grew,
    /// found in one read, so an idle service costs one query a round.
    /// With several replicas on one database, one of them signs at a time
    /// (the others find the job leased and skip the round).
    pub async fn round(&self) -> Result<usize, ProofError> {
        let Some(_lease) = self.store.try_lease(Job::Checkpoints).await? else {
            return Ok(0);
        };
        let mut signed = 0;
        for org in self.store.orgs_with_unsigned_entries().await? {
            // One organization's trouble does not hold up the others.
            match self.current(&org).await {
                Ok(_) => signed += 1,
                Err(e) => tracing::error!(org = %org.slug, error = %e, "no checkpoint signed"),
            }
        }
        Ok(signed)
    }
}

pub async fn run(checkpointer: Checkpointer, shutdown: CancellationToken) {
    let interval = checkpointer.config.interval;
    loop {
        if let Err(e) = checkpointer.round().await {
            tracing::warn!(error = %e, "checkpoint round failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
