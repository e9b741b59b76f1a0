//! `auditlog verify`: checks, offline, that an export is what the log
//! signed. Needs no server and no database: the export (JSON Lines with
//! proofs, which ends with the signed checkpoint they are for, or a
//! separate checkpoint file) and the service's public verifier key.
//!
//! - The checkpoint's Ed25519 signature, by the given key.
//! - Every exported entry: its leaf hash recomputed from its content, and
//!   its inclusion proof against the checkpoint's root. A changed byte, an
//!   inserted or moved entry fails here, by name.
//! - With `--complete`: that every sequence number up to the tree size is
//!   in the export or was removed by retention, as a proven
//!   `audit_log.retention_purged` entry of the export accounts for
//!   ([`auditlog_domain::gaps`]); any other gap is a deletion.
//! - With `--previous` and `--consistency`: that the earlier checkpoint is a
//!   prefix of this one (nothing signed before was rewritten).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use auditlog_domain::canonical::{Fields, entry_leaf_hash};
use auditlog_domain::checkpoint::{self, Checkpoint, VerifierKey};
use auditlog_domain::export_format::checkpoint_note;
use auditlog_domain::gaps::{self, Gaps, Purge};
use auditlog_domain::merkle::{self, Hash};
use auditlog_domain::personal::commitments_from;
use auditlog_domain::{Entry, Timestamp};
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
    /// or the JSON answer of `GET …/audit/checkpoint`. Not needed with an
    /// export made with proofs, whose last line is its checkpoint.
    #[arg(long, required_unless_present = "export")]
    pub checkpoint: Option<PathBuf>,
    /// A JSON Lines export made with `format=jsonl&proofs=true`.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// The export is unfiltered: every sequence number up to the tree size
    /// must be there or have been removed by retention.
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
    /// Neither proven nor failed: what a reader should know.
    pub notes: Vec<String>,
    pub failures: Vec<String>,
}

/// Failures listed one by one before the rest are counted: enough to act
/// on, and a damaged file does not bury the verdict.
const LISTED: usize = 50;

fn read(path: &Path) -> Result<String, AnyError> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// A verifier key given as its text or as a file holding it.
pub(crate) fn verifier_key(arg: &str) -> Result<VerifierKey, AnyError> {
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

/// `seq 7`, or `seq 41–43` for a run.
fn seqs(run: &RangeInclusive<u64>) -> String {
    if run.start() == run.end() {
        format!("seq {}", run.start())
    } else {
        format!("seq {}–{}", run.start(), run.end())
    }
}

/// How many numbers a run holds, without walking it.
fn run_len(run: &RangeInclusive<u64>) -> u64 {
    run.end() - run.start() + 1
}

/// Checks the signed note `note`, found in `source`, with `key`.
fn check_checkpoint(source: &str, note: &str, key: &VerifierKey, report: &mut Report) -> Option<Checkpoint> {
    match checkpoint::verify(note, key) {
        Ok(cp) => {
            report.ok.push(format!(
                "checkpoint {source}: signed by {}, origin {}, tree size {}",
                key.name(),
                cp.origin.as_str(),
                cp.size
            ));
            Some(cp)
        }
        Err(e) => {
            report.failures.push(format!(
                "checkpoint {source}: does not verify with key {}: {e}",
                key.name()
            ));
            None
        }
    }
}

/// An export file read line by line: its entry lines (numbered from 1) and
/// its checkpoint line, if it has one.
#[derive(Debug, Default)]
pub struct ExportFile {
    pub entries: Vec<(usize, Value)>,
    pub checkpoint: Option<(usize, String)>,
}

impl ExportFile {
    pub fn parse(text: &str, report: &mut Report) -> Self {
        let mut file = Self::default();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let line_no = n + 1;
            let value: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    report.failures.push(format!("line {line_no}: not JSON: {e}"));
                    continue;
                }
            };
            match checkpoint_note(&value) {
                None => file.entries.push((line_no, value)),
                Some(Err(e)) => report.failures.push(format!("line {line_no}: {e}")),
                // Two exports pasted together would prove against either.
                Some(Ok(_)) if file.checkpoint.is_some() => report
                    .failures
                    .push(format!("line {line_no}: a second checkpoint line; an export has one")),
                Some(Ok(note)) => file.checkpoint = Some((line_no, note.to_owned())),
            }
        }
        file
    }
}

/// The checkpoint the proofs are checked against: `--checkpoint` if given,
/// else the export's own. Both given must be the same tree.
fn checkpoint_for(
    args: &VerifyArgs,
    file: Option<&ExportFile>,
    key: &VerifierKey,
    report: &mut Report,
) -> Result<Option<Checkpoint>, AnyError> {
    let embedded = match (file.and_then(|f| f.checkpoint.as_ref()), &args.export) {
        (Some((line, note)), Some(path)) => {
            let source = format!("{} line {line}", path.display());
            Some(check_checkpoint(&source, note, key, report))
        }
        _ => None,
    };
    let Some(path) = &args.checkpoint else {
        if embedded.is_none() {
            report.failures.push(
                "no checkpoint: the export has no checkpoint line (export it with proofs=true) and \
                 --checkpoint was not given"
                    .into(),
            );
        }
        return Ok(embedded.flatten());
    };
    let given = check_checkpoint(&path.display().to_string(), &note_of(&read(path)?), key, report);
    if let (Some(given), Some(Some(own))) = (&given, &embedded)
        && (given.size, given.root) != (own.size, own.root)
    {
        report.failures.push(format!(
            "checkpoint {}: is for tree size {}, the export's own checkpoint line for {}",
            path.display(),
            given.size,
            own.size
        ));
    }
    Ok(given)
}

/// What the entry lines showed.
#[derive(Debug, Default)]
struct Seen {
    /// Every sequence number exported, with the entry's `received_at`.
    present: BTreeMap<u64, Timestamp>,
    /// The purge entries among the proven ones.
    purges: Vec<Purge>,
    proven: usize,
}

/// An export line as an entry, with the leaf hash and proof it carries.
fn entry_of(mut value: Value) -> Result<(Entry, Option<Value>, Option<Value>), String> {
    let (claimed, proof) = match value.as_object_mut() {
        Some(obj) => (obj.remove("leaf_hash"), obj.remove("inclusion_proof")),
        None => (None, None),
    };
    // Fields this version does not know are left out of the entry, not
    // refused; a leaf that commits to them then fails to prove.
    let entry: Entry = serde_json::from_value(value).map_err(|e| format!("not an entry: {e}"))?;
    Ok((entry, claimed, proof))
}

/// Proves one entry included in the checkpoint's tree.
fn prove(entry: &Entry, claimed: Option<&Value>, proof: Option<&Value>, cp: &Checkpoint) -> Result<(), String> {
    let proof = proof.ok_or("has no inclusion proof; export with proofs=true")?;
    if entry.canonical_version >= 3 {
        // Each personal value must come with its salt, or be marked erased
        // with its commitment: anything else cannot be checked at all.
        commitments_from(&Fields::of(entry), &entry.personal)
            .map_err(|e| format!("its personal values cannot be checked: {e}"))?;
    }
    let leaf = entry_leaf_hash(entry);
    if claimed.and_then(hash).is_some_and(|c| c != leaf) {
        return Err("its content does not match the leaf hash it was exported with (changed after export)".into());
    }
    let (Some(size), Some(path)) = (proof["tree_size"].as_u64(), hashes(&proof["hashes"])) else {
        return Err("malformed inclusion proof".into());
    };
    if size != cp.size {
        return Err(format!(
            "its proof is for tree size {size}, the checkpoint for {}",
            cp.size
        ));
    }
    merkle::verify_inclusion(entry.seq as u64 - 1, size, &leaf, &path, &cp.root).map_err(|e| {
        format!("is not in the signed log as exported: its content was changed, or it was inserted or moved ({e})")
    })
}

/// A proven purge entry as a purge, if auditlog recorded it.
fn purge_of(entry: &Entry, line: &Value) -> Result<Option<Purge>, String> {
    let Some(purge) = Purge::from_entry(entry)? else {
        return Ok(None);
    };
    // Entries that say who submitted them must say the service did.
    match line.get("submitted_by") {
        Some(by) if by.get("kind").and_then(Value::as_str) != Some("service") => {
            Err(format!("submitted by {by}, not by the service"))
        }
        _ => Ok(Some(purge)),
    }
}

fn check_line(line_no: usize, line: Value, cp: &Checkpoint, seen: &mut Seen, report: &mut Report) {
    let (entry, claimed, proof) = match entry_of(line.clone()) {
        Ok(parts) => parts,
        Err(e) => return report.failures.push(format!("line {line_no}: {e}")),
    };
    let name = format!("entry seq {} (id {}, line {line_no})", entry.seq, entry.id);
    let Ok(seq @ 1..) = u64::try_from(entry.seq) else {
        return report.failures.push(format!("{name}: sequence numbers start at 1"));
    };
    if seen.present.insert(seq, entry.received_at).is_some() {
        return report.failures.push(format!("{name}: sequence number appears twice"));
    }
    if let Err(e) = prove(&entry, claimed.as_ref(), proof.as_ref(), cp) {
        return report.failures.push(format!("{name}: {e}"));
    }
    seen.proven += 1;
    match purge_of(&entry, &line) {
        Ok(Some(purge)) => seen.purges.push(purge),
        Ok(None) => {}
        Err(e) => report
            .notes
            .push(format!("{name}: a retention purge entry that accounts for no gap: {e}")),
    }
}

/// Checks every entry line of an export against the checkpoint.
pub fn check_export(file: ExportFile, cp: &Checkpoint, complete: bool, report: &mut Report) {
    let mut seen = Seen::default();
    let lines = file.entries.len();
    for (line_no, line) in file.entries {
        check_line(line_no, line, cp, &mut seen, report);
    }
    report.ok.push(format!(
        "export: {} of {lines} entries proven included in the checkpoint's tree",
        seen.proven
    ));
    if complete {
        report_gaps(&gaps::explain(cp.size, &seen.present, &seen.purges), cp.size, report);
    }
}

/// Pushes `lines` as failures, the first [`LISTED`] of them one by one.
fn fail_listed(lines: Vec<String>, report: &mut Report) {
    let more = lines.len().saturating_sub(LISTED);
    report.failures.extend(lines.into_iter().take(LISTED));
    if more > 0 {
        report.failures.push(format!("… and {more} more gaps"));
    }
}

fn report_gaps(gaps: &Gaps, size: u64, report: &mut Report) {
    // One line per purge entry: a pass that deleted by timestamp leaves
    // many runs.
    let mut by_purge: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    for e in &gaps.expired {
        let (first, last, n) = by_purge.entry(e.by).or_insert((u64::MAX, 0, 0));
        *first = (*first).min(*e.seqs.start());
        *last = (*last).max(*e.seqs.end());
        *n += run_len(&e.seqs);
    }
    for (by, (first, last, n)) in by_purge {
        report.ok.push(format!(
            "{} ({n} entries): expired by retention (purge entry seq {by})",
            seqs(&(first..=last))
        ));
    }
    if let (Some(first), Some(last)) = (gaps.expired_unrecorded.first(), gaps.expired_unrecorded.last()) {
        let n: u64 = gaps.expired_unrecorded.iter().map(run_len).sum();
        report.notes.push(format!(
            "{} ({n} entries): missing before the oldest retention purge entry in the export, where purge \
             entries have expired too; expired by retention, or deleted, cannot be told apart",
            seqs(&(*first.start()..=*last.end()))
        ));
    }
    let mut problems: Vec<String> = gaps
        .contradictions
        .iter()
        .map(|c| format!("purge entry seq {}: does not match the export: {}", c.by, c.why))
        .collect();
    problems.extend(gaps.unexplained.iter().map(|u| match u.within {
        Some(by) => format!(
            "{} missing: more entries are missing in the range of purge entry seq {by} than it removed",
            seqs(&u.seqs)
        ),
        None => format!("{} missing: not covered by any retention purge entry", seqs(&u.seqs)),
    }));
    if problems.is_empty() {
        report.ok.push(format!(
            "export: complete, every entry from seq 1 to {size} present or expired by retention"
        ));
    }
    fail_listed(problems, report);
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
    let file = match &args.export {
        Some(path) => Some(ExportFile::parse(&read(path)?, &mut report)),
        None => None,
    };
    let Some(cp) = checkpoint_for(&args, file.as_ref(), &key, &mut report)? else {
        return Ok(report);
    };
    if let Some(file) = file {
        check_export(file, &cp, args.complete, &mut report);
    }
    if let (Some(prev), Some(proof)) = (&args.previous, &args.consistency)
        && let Some(prev_cp) = check_checkpoint(&prev.display().to_string(), &note_of(&read(prev)?), &key, &mut report)
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
    for line in &report.notes {
        println!("note  {line}");
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
