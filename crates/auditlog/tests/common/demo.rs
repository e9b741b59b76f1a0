//! `auditlog demo` as the browser tests run it: the real binary on a fresh
//! database, with the logins and keys it printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::Killed;

/// `auditlog demo` on a fresh database, with what it printed.
pub struct Demo {
    _process: Killed,
    pub base: String,
    pub owner: (String, String),
    pub member: (String, String),
    pub read_key: String,
    pub write_key: String,
    _dir: tempfile::TempDir,
}

impl Demo {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("demo.db").display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_auditlog"))
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--entries",
                "3000",
                "--database",
                &db,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let process = Killed(child);
        let mut lines = BufReader::new(stdout).lines();
        let (mut base, mut logins, mut read_key, mut write_key) = (None, Vec::new(), None, None);
        for line in lines.by_ref() {
            let line = line.unwrap();
            let value = |label: &str| line.strip_prefix(label).map(|v| v.trim().to_owned());
            if let Some(v) = value("web UI:") {
                base = v.split_whitespace().next().map(|u| u.trim_end_matches('/').to_owned());
            } else if let Some(v) = value("login:") {
                let words: Vec<&str> = v.split_whitespace().collect();
                logins.push((words[0].to_owned(), words[2].to_owned()));
            } else if let Some(v) = value("read key:") {
                read_key = Some(v);
            } else if let Some(v) = value("write key:") {
                write_key = Some(v);
            } else if line.starts_with("Ctrl-C stops the demo") {
                break;
            }
        }
        // Keep draining, so the demo never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        assert_eq!(logins.len(), 2, "the demo prints an owner and a member login");
        Demo {
            _process: process,
            base: base.expect("the demo prints its web UI address"),
            owner: logins[0].clone(),
            member: logins[1].clone(),
            read_key: read_key.expect("read key"),
            write_key: write_key.expect("write key"),
            _dir: dir,
        }
    }

    pub async fn api(&self, path_and_query: &str) -> Value {
        let resp = reqwest::Client::new()
            .get(format!("{}{path_and_query}", self.base))
            .bearer_auth(&self.read_key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path_and_query}");
        resp.json().await.unwrap()
    }

    /// Every entry id the API lists for these parameters, across pages.
    pub async fn all_ids(&self, params: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = format!("/v1/orgs/acme/audit/events?limit=1000&{params}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let page = self.api(&q).await;
            ids.extend(
                page["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
        }
    }
}
