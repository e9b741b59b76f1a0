//! How an entry reads at a glance: a one-line summary of its details, and the
//! before → after pairs of entries that record a change.
//!
//! The service's own change events name their pairs consistently
//! (`old_role`/`new_role`, `old_name`/`new_name`, `old_plan`/`new_plan`, and
//! `webhook.updated`'s `changes: {field: {old, new}}`), so one rule finds
//! them for every event, including ones a platform adds to its catalog.

use serde_json::{Map, Value};

/// One field that changed, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// The most characters a summary shows before it is cut with "…".
pub const SUMMARY_CHARS: usize = 120;

/// A value as a person reads it: strings without quotes, `null` as a dash,
/// anything else as compact JSON.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// The changes an entry records, in the order its details list them.
pub fn changes(details: &Map<String, Value>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (key, value) in details {
        if let Some(field) = key.strip_prefix("old_")
            && let Some(new) = details.get(&format!("new_{field}"))
        {
            out.push(FieldChange {
                field: field.replace('_', " "),
                old: show(value),
                new: show(new),
            });
        }
    }
    if let Some(Value::Object(nested)) = details.get("changes") {
        for (field, pair) in nested {
            if let (Some(old), Some(new)) = (pair.get("old"), pair.get("new")) {
                out.push(FieldChange {
                    field: field.replace('_', " "),
                    old: show(old),
                    new: show(new),
                });
            }
        }
    }
    out
}

/// One line: the changes if the entry records any, else `key: value` pairs,
/// cut at [`SUMMARY_CHARS`] characters.
pub fn summary(details: &Map<String, Value>) -> String {
    let changes = changes(details);
    let line = if changes.is_empty() {
        details
            .iter()
            .map(|(k, v)| format!("{k}: {}", show(v)))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        changes
            .iter()
            .map(|c| format!("{}: {} → {}", c.field, c.old, c.new))
            .collect::<Vec<_>>()
            .join("; ")
    };
    cut(&line, SUMMARY_CHARS)
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn finds_old_and_new_pairs() {
        let d = map(json!({"member": "bo@acme.com", "old_role": "member", "new_role": "admin"}));
        assert_eq!(
            changes(&d),
            vec![FieldChange {
                field: "role".into(),
                old: "member".into(),
                new: "admin".into()
            }]
        );
        assert_eq!(summary(&d), "role: member → admin");
    }

    #[test]
    fn finds_nested_changes_of_webhook_updates() {
        let d = map(json!({"url": "https://x", "changes": {
            "enabled": {"old": false, "new": true},
            "description": {"old": null, "new": "SIEM"}
        }}));
        let c = changes(&d);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1],
            FieldChange {
                field: "description".into(),
                old: "—".into(),
                new: "SIEM".into()
            }
        );
        assert_eq!(summary(&d), "enabled: false → true; description: — → SIEM");
    }

    #[test]
    fn an_old_value_without_a_new_one_is_not_a_change() {
        let d = map(json!({"old_name": "a", "name": "b"}));
        assert!(changes(&d).is_empty());
        assert_eq!(summary(&d), "old_name: a, name: b");
    }

    #[test]
    fn summaries_are_cut_on_a_character_boundary() {
        let d = map(json!({"note": "é".repeat(300)}));
        let s = summary(&d);
        assert_eq!(s.chars().count(), SUMMARY_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(summary(&Map::new()), "");
    }
}
