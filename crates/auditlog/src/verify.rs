//! `auditlog verify`: checks, offline, that an export is what the log
//! signed. Needs no server and no database: the export (JSON Lines with
//! proofs), a signed checkpoint and the service's public verifier key.
//!
//! - The checkpoint's Ed25519 signature, by the given key.
//! - Every exported entry: its leaf hash recomputed from its content, and
//!   its inclusion proof against the checkpoint's root. A changed byte, an
//!   inserted or moved entry fails here, by name.
//! - With `--complete`: that no sequence number is missing (a deleted
//!   entry), from the first exported through the tree size.
//! - With `--previous` and `--consistency`: that the earlier checkpoint is a
//!   prefix of this one (nothing signed before was rewritten).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use auditlog_domain::Entry;
use auditlog_domain::canonical::entry_leaf_hash;
use auditlog_domain::checkpoint::{self, Checkpoint, VerifierKey};
use auditlog_domain::merkle::{self, Hash};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde_json::Value;

use crate::backend::AnyError;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The service's verifier key (`auditlog key show-signing`, or
    /// `GET /v1/audit/signing-key`), or a file holding it.
    #[arg(long)]
    pub key: String,
    /// The signed checkpoint: the note text (`…/audit/checkpoint?format=note`)
    /// or the JSON answer of `GET …/audit/checkpoint`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A JSON Lines export made with `format=jsonl&proofs=true`.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// The export is unfiltered: every sequence number from its first entry
    /// up to the tree size must be there.
    #[arg(long, requires = "export")]
    pub complete: bool,
    /// An earlier checkpoint to prove this one consistent with.
    #[arg(long, requires = "consistency")]
    pub previous: Option<PathBuf>,
    /// The answer of `GET …/audit/proofs/consistency?from=<previous size>&to=<size>`.
    #[arg(long, requires = "previous")]
    pub consistency: Option<PathBuf>,
}

/// What was found: lines of findings and whether any failed.
#[derive(Debug, Default)]
pub struct Report {
    pub ok: Vec<String>,
    pub failures: Vec<String>,
}

fn read(path: &Path) -> Result<String, AnyError> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

fn verifier_key(arg: &str) -> Result<VerifierKey, AnyError> {
    let text = if Path::new(arg).is_file() {
        read(Path::new(arg))?
    } else {
        arg.to_owned()
    };
    VerifierKey::parse(text.trim()).map_err(|e| format!("not a verifier key: {e}").into())
}

/// A checkpoint file holds the note itself or the API's JSON around it.
fn note_of(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("note").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| text.to_owned())
}

fn hash(v: &Value) -> Option<Hash> {
    STANDARD.decode(v.as_str()?).ok()?.try_into().ok()
}

fn hashes(v: &Value) -> Option<Vec<Hash>> {
    v.as_array()?.iter().map(hash).collect()
}

fn check_checkpoint(path: &Path, key: &VerifierKey, report: &mut Report) -> Result<Option<Checkpoint>, AnyError> {
    match checkpoint::verify(&note_of(&read(path)?), key) {
        Ok(cp) => {
            report.ok.push(format!(
                "checkpoint {}: signed by {}, origin {}, tree size {}",
                path.display(),
                key.name(),
                cp.origin.as_str(),
                cp.size
            ));
            Ok(Some(cp))
        }
        Err(e) => {
            report.failures.push(format!(
                "checkpoint {}: does not verify with key {}: {e}",
                path.display(),
                key.name()
            ));
            Ok(None)
        }
    }
}

/// Checks every line of an export against the checkpoint.
pub fn check_export(text: &str, cp: &Checkpoint, complete: bool, report: &mut Report) {
    let mut seen = BTreeSet::new();
    let mut good = 0usize;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line_no = n + 1;
        let mut value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                report.failures.push(format!("line {line_no}: not JSON: {e}"));
                continue;
            }
        };
        let (claimed, proof) = match value.as_object_mut() {
            Some(obj) => (obj.remove("leaf_hash"), obj.remove("inclusion_proof")),
            None => (None, None),
        };
        let entry: Entry = match serde_json::from_value(value) {
            Ok(e) => e,
            Err(e) => {
                report.failures.push(format!("line {line_no}: not an entry: {e}"));
                continue;
            }
        };
        let name = format!("entry seq {} (id {}, line {line_no})", entry.seq, entry.id);
        if !seen.insert(entry.seq) {
            report.failures.push(format!("{name}: sequence number appears twice"));
            continue;
        }
        let Some(proof) = proof else {
            report
                .failures
                .push(format!("{name}: has no inclusion proof; export with proofs=true"));
            continue;
        };
        let leaf = entry_leaf_hash(&entry);
        if claimed.as_ref().and_then(hash).is_some_and(|c| c != leaf) {
            report.failures.push(format!(
                "{name}: its content does not match the leaf hash it was exported with (changed after export)"
            ));
            continue;
        }
        let (Some(size), Some(path)) = (proof["tree_size"].as_u64(), hashes(&proof["hashes"])) else {
            report.failures.push(format!("{name}: malformed inclusion proof"));
            continue;
        };
        if size != cp.size {
            report.failures.push(format!(
                "{name}: its proof is for tree size {size}, the checkpoint for {}",
                cp.size
            ));
            continue;
        }
        if entry.seq < 1 {
            report.failures.push(format!("{name}: sequence numbers start at 1"));
            continue;
        }
        match merkle::verify_inclusion(entry.seq as u64 - 1, size, &leaf, &path, &cp.root) {
            Ok(()) => good += 1,
            Err(e) => report.failures.push(format!(
                "{name}: is not in the signed log as exported: its content was changed, or it was \
                 inserted or moved ({e})"
            )),
        }
    }
    report.ok.push(format!(
        "export: {good} of {} entries proven included in the checkpoint's tree",
        seen.len()
    ));
    if complete && let Some(first) = seen.first().copied() {
        let missing: Vec<i64> = (first..=cp.size as i64).filter(|s| !seen.contains(s)).collect();
        for seq in missing.iter().take(50) {
            report.failures.push(format!(
                "entry seq {seq}: missing from the export though the signed log holds it (deleted?)"
            ));
        }
        if missing.len() > 50 {
            report
                .failures
                .push(format!("… and {} more missing", missing.len() - 50));
        }
        if missing.is_empty() {
            report
                .ok
                .push(format!("export: complete, every entry from seq {first} to {}", cp.size));
        }
    }
}

fn check_consistency(prev: &Checkpoint, cp: &Checkpoint, proof_text: &str, report: &mut Report) {
    let proof = serde_json::from_str::<Value>(proof_text).ok();
    let Some(path) = proof.as_ref().and_then(|p| hashes(&p["proof"])) else {
        report
            .failures
            .push("consistency: the proof file is not the API's answer".into());
        return;
    };
    match merkle::verify_consistency(prev.size, cp.size, &prev.root, &cp.root, &path) {
        Ok(()) => report.ok.push(format!(
            "consistency: the log at size {} is a prefix of the log at size {}",
            prev.size, cp.size
        )),
        Err(e) => report.failures.push(format!(
            "consistency: the checkpoint at size {} is not an extension of the one at size {}: {e}",
            cp.size, prev.size
        )),
    }
}

pub fn run(args: VerifyArgs) -> Result<Report, AnyError> {
    let key = verifier_key(&args.key)?;
    let mut report = Report::default();
    let Some(cp) = check_checkpoint(&args.checkpoint, &key, &mut report)? else {
        return Ok(report);
    };
    if let Some(export) = &args.export {
        check_export(&read(export)?, &cp, args.complete, &mut report);
    }
    if let (Some(prev), Some(proof)) = (&args.previous, &args.consistency)
        && let Some(prev_cp) = check_checkpoint(prev, &key, &mut report)?
    {
        if prev_cp.origin != cp.origin {
            report.failures.push(format!(
                "consistency: the checkpoints are of different logs ({} and {})",
                prev_cp.origin.as_str(),
                cp.origin.as_str()
            ));
        } else {
            check_consistency(&prev_cp, &cp, &read(proof)?, &mut report);
        }
    }
    Ok(report)
}

/// Prints the findings and the verdict; `Ok(false)` when anything failed.
pub fn print(report: &Report) -> bool {
    for line in &report.ok {
        println!("ok    {line}");
    }
    for line in &report.failures {
        println!("FAIL  {line}");
    }
    if report.failures.is_empty() {
        println!("VERIFIED");
        true
    } else {
        println!("NOT VERIFIED: {} problem(s)", report.failures.len());
        false
    }
}
