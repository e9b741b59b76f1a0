//! The Audit page's filter form and its URL: what a person picked (presets
//! such as "last 7 days", plain dates), turned into the API's listing
//! parameters, so the table, the "older entries" link and the Export button
//! all ask the API for exactly the same view.
//!
//! Pure: the current time is an argument.

use auditlog_domain::Timestamp;

const DAY_MS: i64 = 86_400_000;

/// The date-range presets of the form, by their URL value.
pub const RANGES: [(&str, &str, i64); 4] = [
    ("24h", "Last 24 hours", DAY_MS),
    ("7d", "Last 7 days", 7 * DAY_MS),
    ("30d", "Last 30 days", 30 * DAY_MS),
    ("90d", "Last 90 days", 90 * DAY_MS),
];

/// The page's filters as they appear in its URL. Empty values count as
/// absent, because a plain HTML form submits every field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UiFilters {
    pub q: String,
    pub actor: String,
    pub events: Vec<String>,
    pub resource_type: String,
    pub resource_id: String,
    /// A preset of [`RANGES`], `custom`, or empty for any time.
    pub range: String,
    /// `YYYY-MM-DD` or RFC 3339; used when `range` is empty or `custom`.
    pub from: String,
    pub to: String,
    pub cursor: String,
}

/// A filter value the page cannot turn into a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormProblem {
    pub field: &'static str,
    pub message: String,
}

impl UiFilters {
    /// Reads the page's query parameters; others (such as `fragment`) are
    /// the page's own business and are ignored here.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut f = Self::default();
        for (k, v) in pairs {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            let slot = match k.as_str() {
                "q" => &mut f.q,
                "actor" => &mut f.actor,
                "resource_type" => &mut f.resource_type,
                "resource_id" => &mut f.resource_id,
                "range" => &mut f.range,
                "from" => &mut f.from,
                "to" => &mut f.to,
                "cursor" => &mut f.cursor,
                "event" => {
                    f.events
                        .extend(v.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned));
                    continue;
                }
                _ => continue,
            };
            *slot = v.to_owned();
        }
        f
    }

    /// Whether any filter (not counting the page cursor) is set.
    pub fn is_filtered(&self) -> bool {
        self.without_cursor() != Self::default()
    }

    pub fn without_cursor(&self) -> Self {
        Self {
            cursor: String::new(),
            ..self.clone()
        }
    }

    fn uses_dates(&self) -> bool {
        self.range.is_empty() || self.range == "custom"
    }

    /// The parameters the page's URL and the API spell alike, in order.
    fn shared_pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("q", self.q.as_str()), ("actor", self.actor.as_str())]
            .into_iter()
            .chain(self.events.iter().map(|e| ("event", e.as_str())))
            .chain([
                ("resource_type", self.resource_type.as_str()),
                ("resource_id", self.resource_id.as_str()),
            ])
    }

    /// The page's own URL query (without the leading `?`), empty values
    /// left out so shared links stay short.
    pub fn to_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                out.append_pair(k, v);
            }
        };
        for (k, v) in self.shared_pairs() {
            put(k, v);
        }
        put("range", &self.range);
        if self.uses_dates() {
            put("from", &self.from);
            put("to", &self.to);
        }
        put("cursor", &self.cursor);
        out.finish()
    }

    /// The API's listing parameters for this view at `now`: presets become
    /// a `from` bound, a plain date `to` includes that whole day.
    pub fn api_pairs(&self, now: Timestamp) -> Result<Vec<(String, String)>, Vec<FormProblem>> {
        let mut pairs = Vec::new();
        let mut problems = Vec::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                pairs.push((k.to_owned(), v.to_owned()));
            }
        };
        for (k, v) in self.shared_pairs() {
            put(k, v);
        }
        if self.uses_dates() {
            for (field, value, date_offset) in [("from", &self.from, 0), ("to", &self.to, DAY_MS)] {
                match bound(value, date_offset) {
                    Ok(Some(t)) => put(field, &t.to_rfc3339()),
                    Ok(None) => {}
                    Err(message) => problems.push(FormProblem { field, message }),
                }
            }
        } else if let Some((_, _, span)) = RANGES.iter().find(|(v, _, _)| *v == self.range) {
            put("from", &now.plus_millis(-span).to_rfc3339());
        } else {
            problems.push(FormProblem {
                field: "range",
                message: format!(
                    "unknown date range {:?}; pick one of the list or enter dates",
                    self.range
                ),
            });
        }
        put("cursor", &self.cursor);
        if problems.is_empty() { Ok(pairs) } else { Err(problems) }
    }
}

/// A date field's bound: a plain date is midnight UTC of that day, plus
/// `date_offset_ms` (a whole day for an inclusive end date); a full
/// timestamp is taken as it is.
fn bound(value: &str, date_offset_ms: i64) -> Result<Option<Timestamp>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let is_date = value.len() == 10 && value.as_bytes().get(4) == Some(&b'-');
    if is_date {
        Timestamp::parse_date(value)
            .map(|t| Some(t.plus_millis(date_offset_ms)))
            .map_err(|_| format!("{value:?} is not a date (YYYY-MM-DD)"))
    } else {
        Timestamp::parse(value)
            .map(Some)
            .map_err(|e| format!("{value:?} is neither a date (YYYY-MM-DD) nor a timestamp: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-28T12:00:00Z").unwrap()
    }

    #[test]
    fn empty_form_fields_are_absent() {
        let f = UiFilters::from_pairs(&pairs("q=&actor=&event=&event=api_key.*&range=&from=&to="));
        assert_eq!(f.events, vec!["api_key.*"]);
        assert!(f.is_filtered());
        assert_eq!(f.to_query(), "event=api_key.*");
        assert!(!UiFilters::from_pairs(&pairs("actor=&cursor=abc")).is_filtered());
    }

    #[test]
    fn presets_become_a_from_bound_and_dates_are_ignored() {
        let f = UiFilters::from_pairs(&pairs("range=7d&from=2020-01-01&actor=a%40b.c"));
        assert_eq!(
            f.api_pairs(now()).unwrap(),
            vec![
                ("actor".to_owned(), "a@b.c".to_owned()),
                ("from".to_owned(), "2026-11-21T12:00:00.000Z".to_owned()),
            ]
        );
        assert_eq!(f.to_query(), "actor=a%40b.c&range=7d");
    }

    #[test]
    fn an_end_date_includes_its_whole_day() {
        let f = UiFilters::from_pairs(&pairs("range=custom&from=2026-01-01&to=2026-01-31"));
        assert_eq!(
            f.api_pairs(now()).unwrap(),
            vec![
                ("from".to_owned(), "2026-01-01T00:00:00.000Z".to_owned()),
                ("to".to_owned(), "2026-02-01T00:00:00.000Z".to_owned()),
            ]
        );
        let exact = UiFilters::from_pairs(&pairs("to=2026-01-31T10:00:00Z"));
        assert_eq!(exact.api_pairs(now()).unwrap()[0].1, "2026-01-31T10:00:00.000Z");
    }

    #[test]
    fn bad_dates_and_ranges_are_named() {
        let f = UiFilters::from_pairs(&pairs("from=2026-13-01&to=yesterday"));
        let problems = f.api_pairs(now()).unwrap_err();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].field, "from");
        assert!(problems[1].message.contains("yesterday"), "{problems:?}");
        let f = UiFilters::from_pairs(&pairs("range=1y"));
        assert_eq!(f.api_pairs(now()).unwrap_err()[0].field, "range");
    }

    #[test]
    fn events_and_the_cursor_carry_through() {
        let f = UiFilters::from_pairs(&pairs("event=a.b,c.*&event=d.e&cursor=xyz"));
        let api = f.api_pairs(now()).unwrap();
        let events: Vec<_> = api
            .iter()
            .filter(|(k, _)| k == "event")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(events, ["a.b", "c.*", "d.e"]);
        assert_eq!(api.last().unwrap(), &("cursor".to_owned(), "xyz".to_owned()));
        assert_eq!(f.without_cursor().to_query(), "event=a.b&event=c.*&event=d.e");
    }
}
