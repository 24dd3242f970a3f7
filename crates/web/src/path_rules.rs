//! Headers and a Cache-Control policy per URL path pattern, as a site's
//! config file sets them: hashed assets cached for a year, HTML pages
//! revalidated on every use.

use std::fmt;
use std::str::FromStr;

use http::header::CACHE_CONTROL;
use http::{HeaderName, HeaderValue};

use crate::files::RequestPath;

/// A URL path pattern: an exact path (`/robots.txt`), or a path with one
/// `*` that stands for any run of characters, `/` included (`/assets/*`,
/// `*.html`, `/docs/*.pdf`, `*/` for every directory's page). It is
/// matched against the decoded path, so `%2E` cannot dodge `*.html`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    prefix: String,
    /// After the `*`; `None` for an exact path.
    suffix: Option<String>,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("a pattern starts with `/` or `*`")]
    NotAPath,
    #[error("a pattern holds at most one `*`")]
    ManyStars,
    #[error("a pattern matches the path only: no `?`, `#` or `%`")]
    NotPathOnly,
}

impl FromStr for PathPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, PatternError> {
        if !text.starts_with(['/', '*']) {
            return Err(PatternError::NotAPath);
        }
        if text.contains(['?', '#', '%']) {
            return Err(PatternError::NotPathOnly);
        }
        let pattern = match text.split_once('*') {
            None => Self {
                prefix: text.to_owned(),
                suffix: None,
            },
            Some((_, suffix)) if suffix.contains('*') => return Err(PatternError::ManyStars),
            Some((prefix, suffix)) => Self {
                prefix: prefix.to_owned(),
                suffix: Some(suffix.to_owned()),
            },
        };
        Ok(pattern)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.suffix {
            None => f.write_str(&self.prefix),
            Some(suffix) => write!(f, "{}*{suffix}", self.prefix),
        }
    }
}

impl PathPattern {
    pub fn matches(&self, path: &str) -> bool {
        match &self.suffix {
            None => path == self.prefix,
            Some(suffix) => {
                path.len() >= self.prefix.len() + suffix.len()
                    && path.starts_with(&self.prefix)
                    && path.ends_with(suffix.as_str())
            }
        }
    }

    /// A path both patterns match, if there is one. Two stars overlap
    /// when one prefix starts the other and one suffix ends the other:
    /// the longer prefix, anything, then the longer suffix matches both.
    pub fn overlap(&self, other: &PathPattern) -> Option<String> {
        match (&self.suffix, &other.suffix) {
            (None, None) => (self.prefix == other.prefix).then(|| self.prefix.clone()),
            (None, Some(_)) => other.matches(&self.prefix).then(|| self.prefix.clone()),
            (Some(_), None) => self.matches(&other.prefix).then(|| other.prefix.clone()),
            (Some(a), Some(b)) => {
                let prefix = longer_if_nested(&self.prefix, &other.prefix, |long, short| {
                    long.starts_with(short)
                })?;
                let suffix = longer_if_nested(a, b, |long, short| long.ends_with(short))?;
                Some(format!("{prefix}x{suffix}"))
            }
        }
    }
}

/// The longer of two strings when `contains(longer, shorter)` holds.
fn longer_if_nested<'a>(
    a: &'a str,
    b: &'a str,
    contains: fn(&str, &str) -> bool,
) -> Option<&'a str> {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    contains(long, short).then_some(long)
}

/// What one pattern adds to the responses for the paths it matches; these
/// win over the site-wide `--header` and `--cache-control`.
#[derive(Debug, Clone)]
pub struct PathRule {
    pub pattern: PathPattern,
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `Cache-Control` of successful and not-modified responses.
    pub cache_control: Option<HeaderValue>,
}

impl PathRule {
    /// The header names this rule sets.
    fn names(&self) -> impl Iterator<Item = &HeaderName> {
        let policy = self.cache_control.as_ref().map(|_| &CACHE_CONTROL);
        self.headers.iter().map(|(name, _)| name).chain(policy)
    }
}

/// Two rules that would both set one header on some path, so which value
/// is sent would depend on their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConflict {
    /// Indexes of the two rules, the earlier first.
    pub first: usize,
    pub second: usize,
    pub header: HeaderName,
    /// A path both match.
    pub example: String,
}

/// Refuses rules whose patterns overlap and set the same header; rules
/// that overlap but set different headers both apply.
pub fn check(rules: &[PathRule]) -> Result<(), RuleConflict> {
    for (second, later) in rules.iter().enumerate() {
        for (first, earlier) in rules[..second].iter().enumerate() {
            let Some(example) = earlier.pattern.overlap(&later.pattern) else {
                continue;
            };
            if let Some(header) = later
                .names()
                .find(|name| earlier.names().any(|n| n == *name))
            {
                return Err(RuleConflict {
                    first,
                    second,
                    header: header.clone(),
                    example,
                });
            }
        }
    }
    Ok(())
}

/// The path rules match: decoded and normalized (`//` and `.` gone), with
/// its trailing slash; the raw path when it is malformed (it gets a 400).
pub fn matched_path(raw: &str) -> String {
    let Ok(path) = RequestPath::parse(raw) else {
        return raw.to_owned();
    };
    let url = path
        .segments()
        .iter()
        .fold(String::new(), |mut url, segment| {
            url.push('/');
            url.push_str(&segment.to_string_lossy());
            url
        });
    if url.is_empty() || path.has_trailing_slash() {
        url + "/"
    } else {
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> PathPattern {
        text.parse().unwrap()
    }

    fn rule(text: &str, headers: &[&str], cache_control: bool) -> PathRule {
        PathRule {
            pattern: pattern(text),
            headers: headers
                .iter()
                .map(|name| {
                    (
                        HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_static("x"),
                    )
                })
                .collect(),
            cache_control: cache_control.then(|| HeaderValue::from_static("no-cache")),
        }
    }

    #[test]
    fn patterns_match_paths() {
        assert!(pattern("/assets/*").matches("/assets/app.3f2a.js"));
        assert!(pattern("/assets/*").matches("/assets/deep/x.css"));
        assert!(!pattern("/assets/*").matches("/assets"));
        assert!(pattern("*.html").matches("/index.html"));
        assert!(!pattern("*.html").matches("/index.htm"));
        assert!(pattern("*/").matches("/"));
        assert!(pattern("*/").matches("/docs/"));
        assert!(pattern("/robots.txt").matches("/robots.txt"));
        assert!(!pattern("/robots.txt").matches("/robots.txt/"));
        assert!(pattern("/a*a").matches("/aa"));
        assert!(!pattern("/a*/a").matches("/a"));
        assert_eq!(pattern("/docs/*.pdf").to_string(), "/docs/*.pdf");
    }

    #[test]
    fn bad_patterns() {
        assert_eq!("x.html".parse::<PathPattern>(), Err(PatternError::NotAPath));
        assert_eq!(
            "/*/*.js".parse::<PathPattern>(),
            Err(PatternError::ManyStars)
        );
        assert_eq!(
            "/a?b=1".parse::<PathPattern>(),
            Err(PatternError::NotPathOnly)
        );
    }

    #[test]
    fn overlaps_come_with_a_path_both_match() {
        let both = |a: &str, b: &str| pattern(a).overlap(&pattern(b));
        assert_eq!(
            both("/assets/*", "*.html").as_deref(),
            Some("/assets/x.html")
        );
        assert_eq!(
            both("*.html", "/assets/*").as_deref(),
            Some("/assets/x.html")
        );
        assert_eq!(both("/assets/*.js", "*/"), None);
        assert_eq!(both("/a/*", "/b/*"), None);
        assert_eq!(both("/a/*", "/a/b/*").as_deref(), Some("/a/b/x"));
        assert_eq!(both("/x.html", "*.html").as_deref(), Some("/x.html"));
        assert_eq!(both("/x.html", "/x.html").as_deref(), Some("/x.html"));
        assert_eq!(both("/x.css", "*.html"), None);
        for (a, b) in [("/assets/*", "*.html"), ("/a/*", "/a/b/*"), ("*", "*/")] {
            let example = both(a, b).unwrap();
            assert!(pattern(a).matches(&example) && pattern(b).matches(&example));
        }
    }

    #[test]
    fn overlapping_rules_may_not_set_one_header() {
        let rules = [
            rule("/assets/*", &[], true),
            rule("*.html", &["x-frame-options"], false),
            rule("*/", &[], true),
        ];
        assert_eq!(check(&rules[..2]), Ok(()));
        let conflict = check(&rules).unwrap_err();
        assert_eq!((conflict.first, conflict.second), (0, 2));
        assert_eq!(conflict.header, CACHE_CONTROL);
        assert_eq!(conflict.example, "/assets/x/");
    }

    #[test]
    fn rules_see_decoded_normal_paths() {
        assert_eq!(matched_path("/"), "/");
        assert_eq!(matched_path("/docs//a%2Ehtml"), "/docs/a.html");
        assert_eq!(matched_path("/docs/./"), "/docs/");
        assert_eq!(matched_path("/docs"), "/docs");
    }
}
