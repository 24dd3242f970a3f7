//! The request body from curl's flags: `-d/--data`, `--data-binary`,
//! `--data-urlencode`, `--json`, `-F/--form` and `-T/--upload-file`, and
//! `-G`, which moves the data into the query string.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use web::RequestBody;

/// What curl leaves unescaped in `--data-urlencode`: RFC 3986's unreserved
/// characters.
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The body flags as given.
#[derive(Debug, Default)]
pub struct BodyFlags<'a> {
    pub data: &'a [String],
    pub data_binary: &'a [String],
    pub data_urlencode: &'a [String],
    pub json: &'a [String],
    pub form: &'a [String],
    pub upload: Option<&'a Path>,
}

/// A body and the headers it implies.
#[derive(Debug, Default)]
pub struct Built {
    pub body: RequestBody,
    pub headers: HeaderMap,
    /// Form data for `-G` to put in the query string instead.
    pub query: Option<String>,
}

impl BodyFlags<'_> {
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.data_binary.is_empty()
            && self.data_urlencode.is_empty()
            && self.json.is_empty()
            && self.form.is_empty()
            && self.upload.is_none()
    }

    /// Builds the body; with `into_query` (`-G`), form data becomes the
    /// query string instead.
    pub fn build(&self, into_query: bool) -> anyhow::Result<Built> {
        let mut built = Built::default();
        if let Some(path) = self.upload {
            let length = std::fs::metadata(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .len();
            built.body = RequestBody::File {
                path: path.to_owned(),
                length,
            };
            return Ok(built);
        }
        if !self.form.is_empty() {
            let (content_type, body) = multipart(self.form, &boundary())?;
            built.headers.insert(CONTENT_TYPE, content_type);
            built.body = RequestBody::Bytes(body.into());
            return Ok(built);
        }
        if !self.json.is_empty() {
            let mut body = Vec::new();
            for item in self.json {
                body.extend(source(item, false)?);
            }
            built
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            built
                .headers
                .insert(ACCEPT, HeaderValue::from_static("application/json"));
            built.body = RequestBody::Bytes(body.into());
            return Ok(built);
        }
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for item in self.data {
            parts.push(source(item, true)?);
        }
        for item in self.data_binary {
            parts.push(source(item, false)?);
        }
        for item in self.data_urlencode {
            parts.push(urlencode(item)?.into_bytes());
        }
        if parts.is_empty() {
            return Ok(built);
        }
        let joined = parts.join(&b'&');
        if into_query {
            built.query = Some(String::from_utf8_lossy(&joined).into_owned());
        } else {
            built.headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            built.body = RequestBody::Bytes(Bytes::from(joined));
        }
        Ok(built)
    }
}

/// `@FILE` or `@-` (stdin) as their contents, anything else as itself.
/// `-d` strips carriage returns and newlines from files, as curl does.
fn source(item: &str, strip_newlines: bool) -> anyhow::Result<Vec<u8>> {
    let Some(path) = item.strip_prefix('@') else {
        return Ok(item.as_bytes().to_vec());
    };
    let mut bytes = read_path(path)?;
    if strip_newlines {
        bytes.retain(|&b| b != b'\r' && b != b'\n');
    }
    Ok(bytes)
}

fn read_path(path: &str) -> anyhow::Result<Vec<u8>> {
    if path == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
        Ok(bytes)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {path}"))
    }
}

/// Percent-encoding as curl's `--data-urlencode` does it: everything but
/// the unreserved characters, and a space as `+`.
fn escape(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, UNRESERVED)
        .to_string()
        .replace("%20", "+")
}

/// `--data-urlencode` as curl reads it: `content`, `=content`,
/// `name=content`, `@file` or `name@file`, the content escaped.
fn urlencode(item: &str) -> anyhow::Result<String> {
    let split = item.find('=').or_else(|| item.find('@'));
    Ok(match split {
        None => escape(item.as_bytes()),
        Some(at) => {
            let (name, rest) = item.split_at(at);
            let escaped = match rest.strip_prefix('@') {
                Some(path) => escape(&read_path(path)?),
                None => escape(&rest.as_bytes()[1..]),
            };
            if name.is_empty() {
                escaped
            } else {
                format!("{name}={escaped}")
            }
        }
    })
}

/// curl's boundary: 24 dashes and 16 random hex digits.
fn boundary() -> String {
    format!("{}{:016x}", "-".repeat(24), rand::random::<u64>())
}

/// One `-F` part.
#[derive(Debug, PartialEq)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    content: Vec<u8>,
}

/// `name=value`, `name=<file` (the file as a value) or
/// `name=@file[;type=TYPE][;filename=NAME]`.
fn part(item: &str) -> anyhow::Result<Part> {
    let Some((name, value)) = item.split_once('=') else {
        bail!("-F `{item}` is not name=value");
    };
    let mut part = Part {
        name: name.to_owned(),
        filename: None,
        content_type: None,
        content: Vec::new(),
    };
    if let Some(spec) = value.strip_prefix('@') {
        let mut fields = spec.split(';');
        let path = PathBuf::from(fields.next().unwrap_or_default());
        for field in fields {
            match field.split_once('=') {
                Some(("type", kind)) => part.content_type = Some(kind.to_owned()),
                Some(("filename", name)) => part.filename = Some(name.to_owned()),
                _ => bail!("-F `{item}`: unknown `{field}`"),
            }
        }
        part.content =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        part.filename.get_or_insert_with(|| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        part.content_type.get_or_insert_with(|| {
            mime_guess::from_path(&path)
                .first_raw()
                .unwrap_or("application/octet-stream")
                .to_owned()
        });
    } else if let Some(path) = value.strip_prefix('<') {
        part.content = read_path(path)?;
    } else {
        part.content = value.as_bytes().to_vec();
    }
    Ok(part)
}

/// A multipart/form-data body laid out as curl lays it out.
fn multipart(items: &[String], boundary: &str) -> anyhow::Result<(HeaderValue, Vec<u8>)> {
    let mut body = Vec::new();
    for item in items {
        let part = part(item)?;
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(filename) = &part.filename {
            disposition.push_str(&format!("; filename=\"{filename}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(kind) = &part.content_type {
            body.extend_from_slice(format!("Content-Type: {kind}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
        .context("invalid boundary")?;
    Ok((content_type, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_as_curl() {
        assert_eq!(urlencode("a b&c").unwrap(), "a+b%26c");
        assert_eq!(urlencode("=x=y").unwrap(), "x%3Dy");
        assert_eq!(urlencode("name=é ~-._+").unwrap(), "name=%C3%A9+~-._%2B");
    }

    #[test]
    fn data_is_joined_with_ampersands() {
        let data = ["a=1".to_owned(), "b=2".to_owned()];
        let flags = BodyFlags {
            data: &data,
            ..BodyFlags::default()
        };
        let built = flags.build(false).unwrap();
        assert!(matches!(&built.body, RequestBody::Bytes(b) if b == "a=1&b=2"));
        assert_eq!(
            built.headers[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        let built = flags.build(true).unwrap();
        assert_eq!(built.query.as_deref(), Some("a=1&b=2"));
        assert!(built.body.is_empty());
    }

    #[test]
    fn multipart_parts() {
        let (kind, body) = multipart(&["a=1".to_owned()], "XYZ").unwrap();
        assert_eq!(kind, "multipart/form-data; boundary=XYZ");
        assert_eq!(
            body,
            b"--XYZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XYZ--\r\n"
        );
        assert!(part("novalue").is_err());
        assert!(boundary().starts_with("------------------------"));
        assert_eq!(boundary().len(), 40);
    }
}
