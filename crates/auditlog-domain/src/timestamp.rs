//! Instants in UTC with millisecond precision.
//!
//! Entries are stored and shown to the millisecond: that is what the CSV
//! contract asks for, and keeping one precision everywhere means the value a
//! reader sees is exactly the value that was recorded (and later hashed).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// An RFC 3339 string that could not be read as a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp (e.g. 2026-01-31T12:00:00Z): {0:?}")]
pub struct BadTimestamp(pub String);

const MS_PER_DAY: i64 = 86_400_000;

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 with any offset; sub-millisecond digits are truncated.
    pub fn parse(s: &str) -> Result<Self, BadTimestamp> {
        let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| BadTimestamp(s.to_owned()))?;
        let nanos = dt.unix_timestamp_nanos();
        let ms = nanos.div_euclid(1_000_000);
        i64::try_from(ms).map(Self).map_err(|_| BadTimestamp(s.to_owned()))
    }

    /// Parses a plain date, `2026-01-31`, as midnight UTC at its start.
    pub fn parse_date(s: &str) -> Result<Self, BadTimestamp> {
        let bad = || BadTimestamp(s.to_owned());
        let b = s.as_bytes();
        let shape = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape {
            return Err(bad());
        }
        let year: i32 = s[0..4].parse().map_err(|_| bad())?;
        let month: u8 = s[5..7].parse().map_err(|_| bad())?;
        let day: u8 = s[8..10].parse().map_err(|_| bad())?;
        let month = Month::try_from(month).map_err(|_| bad())?;
        let date = Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
        Ok(Self(date.midnight().assume_utc().unix_timestamp() * 1000))
    }

    /// Is this instant the start of a UTC day, as [`Timestamp::parse_date`]
    /// gives?
    pub fn is_midnight(self) -> bool {
        self.0.rem_euclid(MS_PER_DAY) == 0
    }

    pub fn minus_days(self, days: u32) -> Self {
        Self(self.0 - i64::from(days) * MS_PER_DAY)
    }

    pub fn plus_millis(self, ms: i64) -> Self {
        Self(self.0 + ms)
    }

    fn datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(UtcOffset::UTC)
    }

    /// `2026-01-31T12:00:00.000Z`: always UTC, always three fractional digits,
    /// so the text sorts the way the instants do.
    pub fn to_rfc3339(self) -> String {
        let dt = self.datetime();
        let year = dt.year();
        if !(0..=9999).contains(&year) {
            return format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                year,
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                dt.millisecond()
            );
        }
        // Digit by digit: every entry's two timestamps are formatted for its
        // leaf hash, its API form and its CSV row, and `format!` took most
        // of a leaf's canonical bytes.
        let mut out = String::with_capacity(24);
        let mut digits = |value: u32, width: u32, then: Option<char>| {
            for place in (0..width).rev() {
                out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
            }
            if let Some(c) = then {
                out.push(c);
            }
        };
        digits(year as u32, 4, Some('-'));
        digits(u32::from(u8::from(dt.month())), 2, Some('-'));
        digits(u32::from(dt.day()), 2, Some('T'));
        digits(u32::from(dt.hour()), 2, Some(':'));
        digits(u32::from(dt.minute()), 2, Some(':'));
        digits(u32::from(dt.second()), 2, Some('.'));
        digits(u32::from(dt.millisecond()), 3, Some('Z'));
        out
    }

    /// `20260131T120000Z`, for file names.
    pub fn to_compact(self) -> String {
        let dt = self.datetime();
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// An RFC 3339 string, as [`Timestamp`] serializes.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples(["2026-06-01T12:00:00.000Z"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_milliseconds() {
        let t = Timestamp::parse("2026-01-31T12:34:56.789Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-31T12:34:56.789Z");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn normalises_offsets_to_utc_and_truncates_below_a_millisecond() {
        let t = Timestamp::parse("2026-01-31T14:00:00.123999+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-31T12:00:00.123Z");
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in ["", "yesterday", "2026-01-31", "2026-01-31 12:00:00", "1700000000"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn plain_dates_are_midnight_utc() {
        let t = Timestamp::parse_date("2026-01-31").unwrap();
        assert_eq!(t, Timestamp::parse("2026-01-31T00:00:00Z").unwrap());
        assert!(t.is_midnight());
        assert!(!t.plus_millis(1).is_midnight());
        assert!(Timestamp::parse_date("1969-12-31").unwrap().is_midnight());
        for bad in [
            "",
            "2026-1-31",
            "2026-02-30",
            "2026-13-01",
            "2026/01/31",
            "2026-01-31T00:00:00Z",
            "+202-01-01",
        ] {
            assert!(Timestamp::parse_date(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn handles_times_before_the_epoch() {
        let t = Timestamp::parse("1969-12-31T23:59:59.999Z").unwrap();
        assert_eq!(t.millis(), -1);
        assert_eq!(t.to_rfc3339(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn compact_form_names_files() {
        let t = Timestamp::parse("2026-11-26T09:05:03.5Z").unwrap();
        assert_eq!(t.to_compact(), "20261126T090503Z");
    }
}
