//! What the server serves: a directory on disk or the built-in site, and
//! how a safe request path is resolved to a file, a directory listing or a
//! redirect.

mod builtin;
mod cache;
mod listing;
mod open;
mod path;
mod store;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderValue;

use crate::body::Content;
use crate::conditional::Validators;
use crate::negotiate::Coding;

pub use listing::{Listing, Sort};
pub use open::{OpenError, RootDir};
pub use path::RequestPath;
pub use store::{StoreError, UploadPolicy};

/// The file a directory URL is answered with, when present.
const INDEX: &str = "index.html";

/// One representation of a file, ready to be sent.
#[derive(Debug, Clone)]
pub struct Entity {
    pub content: Content,
    pub len: u64,
    pub validators: Validators,
    pub content_type: HeaderValue,
}

/// What a request path resolves to.
#[derive(Debug)]
pub enum Resolved {
    /// A file; `path` is where its precompressed siblings would be.
    File {
        entity: Entity,
        path: PathBuf,
    },
    Listing(Listing),
    /// A directory asked for without its trailing slash: the URL to use.
    Redirect(String),
}

/// Where the files come from.
#[derive(Debug)]
enum Source {
    BuiltIn(builtin::Site),
    Directory(RootDir),
}

/// The served tree and the policies that apply to it.
#[derive(Debug)]
pub struct Site {
    /// Tells this site's kept files from another's (`cache`).
    id: u64,
    source: Source,
    list: bool,
    hidden: bool,
    upload: Option<UploadPolicy>,
}

impl Site {
    pub fn built_in() -> Self {
        Self {
            id: next_id(),
            source: Source::BuiltIn(builtin::Site::new()),
            list: false,
            hidden: false,
            upload: None,
        }
    }

    /// `list`: answer directories without an index with a listing;
    /// `hidden`: serve dotfiles; `follow_symlinks`: follow symlinks that
    /// lead outside the directory.
    pub fn directory(
        path: &Path,
        list: bool,
        hidden: bool,
        follow_symlinks: bool,
    ) -> io::Result<Self> {
        let root = RootDir::open(path, follow_symlinks)?;
        Ok(Self {
            id: next_id(),
            source: Source::Directory(root),
            list,
            hidden,
            upload: None,
        })
    }

    /// Takes uploads into listed directories (a form on each listing).
    pub fn with_upload(mut self, policy: Option<UploadPolicy>) -> Self {
        self.upload = policy;
        self
    }

    pub fn upload(&self) -> Option<UploadPolicy> {
        self.upload
    }

    /// A description for logs: the directory, or that the site is built in.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::BuiltIn(_) => "the built-in site".to_owned(),
            Source::Directory(root) => root.path().display().to_string(),
        }
    }

    pub fn resolve(&self, path: &RequestPath) -> Result<Resolved, OpenError> {
        if path.is_hidden() && !self.hidden {
            return Err(OpenError::NotFound);
        }
        match &self.source {
            Source::BuiltIn(site) => site.resolve(path),
            Source::Directory(root) => self.resolve_on_disk(root, path),
        }
    }

    fn resolve_on_disk(&self, root: &RootDir, path: &RequestPath) -> Result<Resolved, OpenError> {
        let relative = path.relative();
        if !path.has_trailing_slash()
            && let Some(entity) = cache::get(self.id, root, &relative)
        {
            return Ok(Resolved::File {
                entity,
                path: relative,
            });
        }
        let file = root.open_read(&relative)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            if !path.has_trailing_slash() {
                return Ok(Resolved::Redirect(path.to_url_path(true)));
            }
            let index = relative.join(INDEX);
            match root.open_read(&index) {
                Ok(file) => {
                    let meta = file.metadata()?;
                    if let Some(entity) = file_entity(file, &meta, Path::new(INDEX), None) {
                        return Ok(Resolved::File {
                            entity,
                            path: index,
                        });
                    }
                }
                Err(OpenError::NotFound) => {}
                Err(err) => return Err(err),
            }
            if !self.list {
                return Err(OpenError::NotFound);
            }
            return Ok(Resolved::Listing(Listing::read(
                root,
                &relative,
                &file,
                path,
                self.hidden,
            )?));
        }
        if path.has_trailing_slash() {
            return Err(OpenError::NotFound);
        }
        match file_entity(file, &meta, &relative, None) {
            Some(entity) => Ok(Resolved::File {
                entity: cache::keep(self.id, &relative, crate::sys::stamp_of(&meta), entity),
                path: relative,
            }),
            None => Err(OpenError::Forbidden),
        }
    }

    /// The precompressed sibling of `path` (`name.br`, `name.zst`, `name.gz`), if there
    /// is one, served with the original's media type.
    pub fn precompressed(&self, path: &Path, original: &Entity, coding: Coding) -> Option<Entity> {
        let Source::Directory(root) = &self.source else {
            return None;
        };
        let mut sibling = path.as_os_str().to_owned();
        sibling.push(".");
        sibling.push(coding.extension());
        let file = root.open_read(Path::new(&sibling)).ok()?;
        let meta = file.metadata().ok()?;
        let mut entity = file_entity(file, &meta, path, Some(coding))?;
        entity.content_type = original.content_type.clone();
        Some(entity)
    }
}

/// A number no other site of this process has.
fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// An entity for an open file and its metadata, or `None` if it is not a
/// regular file
/// (a device or a FIFO must never be read by a web server).
fn file_entity(
    file: File,
    meta: &std::fs::Metadata,
    name: &Path,
    coding: Option<Coding>,
) -> Option<Entity> {
    if !meta.is_file() {
        return None;
    }
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let suffix = coding.map_or("", |coding| match coding {
        Coding::Brotli => "-br",
        Coding::Zstd => "-zst",
        Coding::Gzip => "-gz",
    });
    Some(Entity {
        content: Content::File(Arc::new(file)),
        len: meta.len(),
        validators: Validators::for_file(meta.len(), modified, suffix),
        content_type: content_type(name),
    })
}

/// The media type for a file name, with a charset for text.
pub fn content_type(name: &Path) -> HeaderValue {
    let ext = name.extension().and_then(|ext| ext.to_str()).unwrap_or("");
    // Lower-cased on the stack: this runs for every request.
    let mut buf = [0u8; 8];
    let lower = match buf.get_mut(..ext.len()) {
        Some(slot) => {
            slot.copy_from_slice(ext.as_bytes());
            slot.make_ascii_lowercase();
            std::str::from_utf8(slot).unwrap_or("")
        }
        None => "",
    };
    let known = match lower {
        "html" | "htm" => Some("text/html; charset=utf-8"),
        "css" => Some("text/css; charset=utf-8"),
        "js" | "mjs" => Some("text/javascript; charset=utf-8"),
        "txt" => Some("text/plain; charset=utf-8"),
        "md" => Some("text/markdown; charset=utf-8"),
        "json" => Some("application/json"),
        "xml" => Some("text/xml; charset=utf-8"),
        "svg" => Some("image/svg+xml"),
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        "ico" => Some("image/x-icon"),
        "woff2" => Some("font/woff2"),
        "wasm" => Some("application/wasm"),
        "pdf" => Some("application/pdf"),
        "zip" => Some("application/zip"),
        "gz" => Some("application/gzip"),
        "mp4" => Some("video/mp4"),
        "bin" | "iso" | "img" => Some("application/octet-stream"),
        _ => None,
    };
    if let Some(known) = known {
        return HeaderValue::from_static(known);
    }
    match mime_guess::from_ext(ext).first_raw() {
        Some(essence) if essence.starts_with("text/") => {
            HeaderValue::from_str(&format!("{essence}; charset=utf-8"))
                .unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8"))
        }
        Some(essence) => HeaderValue::from_static(essence),
        None => HeaderValue::from_static("application/octet-stream"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        let of = |name: &str| content_type(Path::new(name)).to_str().unwrap().to_owned();
        assert_eq!(of("index.html"), "text/html; charset=utf-8");
        assert_eq!(of("INDEX.HTM"), "text/html; charset=utf-8");
        assert_eq!(of("a.csv"), "text/csv; charset=utf-8");
        assert_eq!(of("photo.jpg"), "image/jpeg");
        assert_eq!(of("archive.tar.gz"), "application/gzip");
        assert_eq!(of("noextension"), "application/octet-stream");
    }
}
