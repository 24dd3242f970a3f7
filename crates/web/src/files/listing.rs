//! Directory listings: sorted, with sizes and modification times, every
//! name escaped for HTML and percent-encoded in links.

use std::ffi::OsString;
use std::fmt::Write;
use std::fs::File;
use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::SystemTime;

use super::open::{OpenError, RootDir};
use super::path::{RequestPath, encode_segment};
use crate::pages::escape_html;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// Entries beyond this are left out of a listing, so one huge directory
/// cannot make one request arbitrarily expensive.
const MAX_ENTRIES: usize = 10_000;

/// The column a listing is sorted by (`?sort=name|size|date`, as
/// miniserve), directories always first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Name,
    Size,
    Date,
}

/// `?sort=…&order=asc|desc`; anything else is the default, by name
/// ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub by: SortBy,
    pub descending: bool,
}

impl Sort {
    pub fn from_query(query: Option<&str>) -> Self {
        let mut sort = Sort {
            by: SortBy::Name,
            descending: false,
        };
        for pair in query.unwrap_or("").split('&') {
            match pair {
                "sort=name" => sort.by = SortBy::Name,
                "sort=size" => sort.by = SortBy::Size,
                "sort=date" => sort.by = SortBy::Date,
                "order=desc" => sort.descending = true,
                "order=asc" => sort.descending = false,
                _ => {}
            }
        }
        sort
    }

    fn key(by: SortBy) -> &'static str {
        match by {
            SortBy::Name => "name",
            SortBy::Size => "size",
            SortBy::Date => "date",
        }
    }

    /// The link of a column heading: this column, ascending, unless it is
    /// already sorted ascending by it.
    fn link(&self, by: SortBy) -> String {
        let order = if self.by == by && !self.descending {
            "desc"
        } else {
            "asc"
        };
        format!("?sort={}&amp;order={order}", Sort::key(by))
    }
}

#[derive(Debug, Clone)]
pub struct Listing {
    url_path: String,
    at_root: bool,
    entries: Vec<Entry>,
    truncated: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    name: OsString,
    is_dir: bool,
    size: u64,
    modified: SystemTime,
}

impl Listing {
    /// Reads the directory `dir` (opened at `relative`). Entries the
    /// server would refuse to serve (dotfiles unless `hidden`, symlinks
    /// leading outside the root) are left out.
    pub fn read(
        root: &RootDir,
        relative: &Path,
        dir: &File,
        path: &RequestPath,
        hidden: bool,
    ) -> Result<Self, OpenError> {
        let mut entries = Vec::new();
        let mut truncated = false;
        crate::sys::read_dir(dir.as_fd(), |name| {
            if name == b"." || name == b".." || (!hidden && name.starts_with(b".")) {
                return ControlFlow::Continue(());
            }
            if entries.len() == MAX_ENTRIES {
                truncated = true;
                return ControlFlow::Break(());
            }
            let name = OsString::from_vec(name.to_vec());
            let Ok(file) = root.open_read(&relative.join(&name)) else {
                return ControlFlow::Continue(());
            };
            let Ok(meta) = file.metadata() else {
                return ControlFlow::Continue(());
            };
            entries.push(Entry {
                name,
                is_dir: meta.is_dir(),
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
            ControlFlow::Continue(())
        })?;
        entries.sort_by(|a, b| {
            b.is_dir
                .cmp(&a.is_dir)
                .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
        });
        Ok(Self {
            url_path: path.to_url_path(true),
            at_root: path.is_root(),
            entries,
            truncated,
        })
    }

    fn sorted(&self, sort: Sort) -> Vec<&Entry> {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| {
            let order = match sort.by {
                SortBy::Name => a.name.as_bytes().cmp(b.name.as_bytes()),
                SortBy::Size => a.size.cmp(&b.size),
                SortBy::Date => a.modified.cmp(&b.modified),
            };
            let order = if sort.descending {
                order.reverse()
            } else {
                order
            };
            b.is_dir.cmp(&a.is_dir).then(order)
        });
        entries
    }

    /// `[{"name": …, "type": "file"|"directory", "size": bytes,
    /// "modified": "2026-01-02T03:04:05Z"}, …]`, in the order asked for.
    pub fn to_json(&self, sort: Sort) -> String {
        let entries: Vec<serde_json::Value> = self
            .sorted(sort)
            .into_iter()
            .map(|entry| {
                serde_json::json!({
                    "name": entry.name.to_string_lossy(),
                    "type": if entry.is_dir { "directory" } else { "file" },
                    "size": entry.size,
                    "modified": OffsetDateTime::from(entry.modified)
                        .replace_nanosecond(0)
                        .ok()
                        .and_then(|time| time.format(&Rfc3339).ok()),
                })
            })
            .collect();
        serde_json::Value::Array(entries).to_string()
    }

    /// The page; with `upload`, a form that posts files to this directory.
    pub fn to_html(&self, sort: Sort, upload: bool) -> String {
        let decoded = percent_encoding::percent_decode_str(&self.url_path).decode_utf8_lossy();
        let title = escape_html(&decoded);
        let mut html = String::with_capacity(1024 + self.entries.len() * 160);
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>Index of {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
             <h1>Index of {title}</h1>\n<table>\n\
             <thead><tr><th><a href=\"{}\">Name</a></th><th class=\"size\"><a href=\"{}\">Size</a></th>\
             <th><a href=\"{}\">Modified (UTC)</a></th></tr></thead>\n<tbody>\n",
            sort.link(SortBy::Name),
            sort.link(SortBy::Size),
            sort.link(SortBy::Date),
        );
        if !self.at_root {
            html.push_str(
                "<tr><td><a href=\"../\">../</a></td><td class=\"size\">-</td><td></td></tr>\n",
            );
        }
        for entry in self.sorted(sort) {
            let slash = if entry.is_dir { "/" } else { "" };
            let href = encode_segment(entry.name.as_bytes());
            let name = escape_html(&entry.name.to_string_lossy());
            let size = if entry.is_dir {
                "-".to_owned()
            } else {
                human_size(entry.size)
            };
            let modified = OffsetDateTime::from(entry.modified)
                .format(format_description!("[year]-[month]-[day] [hour]:[minute]"))
                .unwrap_or_default();
            let _ = writeln!(
                html,
                "<tr><td><a href=\"./{href}{slash}\">{name}{slash}</a></td>\
                 <td class=\"size\" title=\"{} bytes\">{size}</td><td>{modified}</td></tr>",
                entry.size
            );
        }
        html.push_str("</tbody>\n</table>\n");
        if upload {
            html.push_str(UPLOAD_FORM);
        }
        if self.truncated {
            let _ = writeln!(
                html,
                "<p>Only the first {MAX_ENTRIES} entries are shown.</p>"
            );
        }
        html.push_str("<footer>netkit web</footer>\n</body>\n</html>\n");
        html
    }
}

/// Posts the chosen files to the listing's own URL, as miniserve's does.
const UPLOAD_FORM: &str = "<form id=\"upload\" method=\"post\" enctype=\"multipart/form-data\">\n\
<input type=\"file\" name=\"file\" id=\"file\" multiple required>\n\
<button type=\"submit\" id=\"send\">Upload</button>\n</form>\n";

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}\
h1{font-size:1.4em;word-break:break-all}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.25em .75em;border-bottom:1px solid #eee}\
td.size,th.size{text-align:right;white-space:nowrap}a{color:#0645ad;text-decoration:none}\
a:hover{text-decoration:underline}form{margin-top:1.5em}footer{margin-top:2em;color:#777;font-size:.85em}";

/// `932 B`, `1.5 KiB`, `2.0 GiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(2 << 30), "2.0 GiB");
    }

    #[test]
    fn names_are_escaped_and_sorted() {
        let base = std::env::temp_dir().join(format!("web-listing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("zdir")).unwrap();
        std::fs::write(base.join("b <img src=x onerror=alert(1)>.txt"), "x").unwrap();
        std::fs::write(base.join("a&b \"q\".txt"), "xy").unwrap();
        std::fs::write(base.join(".secret"), "").unwrap();
        let root = RootDir::open(&base, false).unwrap();
        let dir = root.open_read(Path::new(".")).unwrap();
        let path = RequestPath::parse("/").unwrap();
        let html = Listing::read(&root, Path::new("."), &dir, &path, false)
            .unwrap()
            .to_html(Sort::from_query(None), false);
        std::fs::remove_dir_all(&base).unwrap();
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("b &lt;img src=x onerror=alert(1)&gt;.txt"));
        assert!(html.contains("href=\"./b%20%3Cimg%20src=x%20onerror=alert(1)%3E.txt\""));
        assert!(html.contains("a&amp;b &quot;q&quot;.txt"));
        assert!(!html.contains(".secret"));
        assert!(!html.contains("../"), "no parent link at the root");
        let zdir = html.find("zdir/").unwrap();
        let a = html.find("a&amp;b").unwrap();
        let b = html.find("b &lt;").unwrap();
        assert!(zdir < a && a < b, "directories first, then by name");
    }

    #[test]
    fn sorts_by_size_and_date_and_speaks_json() {
        let base = std::env::temp_dir().join(format!("web-listing-sort-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("sub")).unwrap();
        std::fs::write(base.join("a.txt"), "xxxxxx").unwrap();
        std::fs::write(base.join("b.txt"), "x").unwrap();
        let root = RootDir::open(&base, false).unwrap();
        let dir = root.open_read(Path::new(".")).unwrap();
        let path = RequestPath::parse("/").unwrap();
        let listing = Listing::read(&root, Path::new("."), &dir, &path, false).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        let names = |sort: &str| -> Vec<String> {
            let json: serde_json::Value =
                serde_json::from_str(&listing.to_json(Sort::from_query(Some(sort)))).unwrap();
            json.as_array()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names("sort=size"), ["sub", "b.txt", "a.txt"]);
        assert_eq!(names("sort=name&order=desc"), ["sub", "b.txt", "a.txt"]);
        assert_eq!(names(""), ["sub", "a.txt", "b.txt"]);
        let json: serde_json::Value =
            serde_json::from_str(&listing.to_json(Sort::from_query(None))).unwrap();
        assert_eq!(json[1]["size"], 6);
        assert_eq!(json[1]["type"], "file");
        assert_eq!(json[0]["type"], "directory");
        assert!(json[1]["modified"].as_str().unwrap().ends_with('Z'));
        let html = listing.to_html(Sort::from_query(Some("sort=size")), true);
        assert!(
            html.contains("href=\"?sort=size&amp;order=desc\""),
            "{html}"
        );
        assert!(html.contains("<form id=\"upload\" method=\"post\""));
        let html = listing.to_html(Sort::from_query(None), false);
        assert!(!html.contains("<form"));
    }
}
