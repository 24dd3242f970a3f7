//! The search language of the inbox, as mail clients spell it: words match
//! anywhere (from, to, subject, body); `from:`, `to:`, `subject:` narrow to
//! one field; `is:unread`, `is:read`, `has:attachment`; `before:`,
//! `after:` and `date:` take a day (`2026-12-04`, UTC). Terms are ANDed;
//! double quotes keep spaces in a term (`subject:"weekly report"`).

use rusqlite::types::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Anywhere(String),
    From(String),
    To(String),
    Subject(String),
    Read(bool),
    HasAttachment,
    /// Received at or after this many microseconds since the epoch.
    Since(i64),
    /// Received before this many microseconds since the epoch.
    Until(i64),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    terms: Vec<Term>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SearchError {
    #[error("`{0}` is not a day (write it as 2026-12-04)")]
    Day(String),
    #[error("`{0}` is not something to search by (is:unread, is:read, has:attachment)")]
    Unknown(String),
}

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

impl Search {
    pub fn parse(query: &str) -> Result<Self, SearchError> {
        let mut terms = Vec::new();
        for token in tokens(query) {
            let term = match token.split_once(':') {
                Some(("from", value)) => Term::From(value.to_owned()),
                Some(("to", value)) => Term::To(value.to_owned()),
                Some(("subject", value)) => Term::Subject(value.to_owned()),
                Some(("is", "unread")) => Term::Read(false),
                Some(("is", "read")) => Term::Read(true),
                Some(("has", "attachment" | "attachments")) => Term::HasAttachment,
                Some(("is" | "has", _)) => return Err(SearchError::Unknown(token)),
                Some(("after", day)) => Term::Since(day_start(day)? + MICROS_PER_DAY),
                Some(("before", day)) => Term::Until(day_start(day)?),
                Some(("date", day)) => {
                    let start = day_start(day)?;
                    terms.push(Term::Since(start));
                    Term::Until(start + MICROS_PER_DAY)
                }
                _ => Term::Anywhere(token),
            };
            terms.push(term);
        }
        Ok(Self { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// A SQL condition over the `message` table and its parameters.
    pub fn to_sql(&self) -> (String, Vec<Value>) {
        let mut clauses = vec!["1".to_owned()];
        let mut params = Vec::new();
        for term in &self.terms {
            let mut like = |columns: &[&str], text: &str| {
                params.push(Value::Text(format!("%{}%", escape_like(text))));
                let n = params.len();
                let any = columns
                    .iter()
                    .map(|column| format!("{column} LIKE ?{n} ESCAPE '\\'"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                clauses.push(format!("({any})"));
            };
            match term {
                Term::Anywhere(text) => like(&["from_text", "to_text", "subject", "body"], text),
                Term::From(text) => like(&["from_text"], text),
                Term::To(text) => like(&["to_text"], text),
                Term::Subject(text) => like(&["subject"], text),
                Term::Read(read) => clauses.push(format!("read = {}", i64::from(*read))),
                Term::HasAttachment => clauses.push("attachments > 0".into()),
                Term::Since(micros) => {
                    params.push(Value::Integer(*micros));
                    clauses.push(format!("received >= ?{}", params.len()));
                }
                Term::Until(micros) => {
                    params.push(Value::Integer(*micros));
                    clauses.push(format!("received < ?{}", params.len()));
                }
            }
        }
        (clauses.join(" AND "), params)
    }
}

/// Splits on whitespace outside double quotes, dropping the quotes.
fn tokens(query: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in query.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Midnight UTC starting `YYYY-MM-DD`, in microseconds since the epoch.
fn day_start(day: &str) -> Result<i64, SearchError> {
    let bad = || SearchError::Day(day.to_owned());
    let mut fields = day.splitn(3, '-').map(|field| field.parse::<i64>());
    let (Some(Ok(year)), Some(Ok(month)), Some(Ok(date))) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&date) {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, date) * MICROS_PER_DAY)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms() {
        let search =
            Search::parse(r#"invoice from:ann subject:"weekly report" is:unread has:attachment"#)
                .unwrap();
        assert_eq!(
            search.terms,
            [
                Term::Anywhere("invoice".into()),
                Term::From("ann".into()),
                Term::Subject("weekly report".into()),
                Term::Read(false),
                Term::HasAttachment,
            ]
        );
        assert!(Search::parse("").unwrap().is_empty());
        assert_eq!(
            Search::parse("is:starred"),
            Err(SearchError::Unknown("is:starred".into()))
        );
    }

    #[test]
    fn days() {
        assert_eq!(day_start("1970-01-01"), Ok(0));
        assert_eq!(day_start("2000-03-01"), Ok(11_017 * MICROS_PER_DAY));
        assert_eq!(day_start("2026-12-04"), Ok(20_791 * MICROS_PER_DAY));
        for bad in ["yesterday", "2026-13-01", "2026-12", "1969-12-31"] {
            assert!(day_start(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn like_wildcards_are_literal() {
        let (sql, params) = Search::parse("50%_off").unwrap().to_sql();
        assert!(sql.contains("ESCAPE"));
        assert_eq!(params, [Value::Text("%50\\%\\_off%".into())]);
    }
}
