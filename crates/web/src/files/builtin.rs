//! The site served when no directory is given: a page about netkit and its
//! logo, compiled into the binary so the server works on a fresh machine.

use std::time::SystemTime;

use super::open::OpenError;
use super::path::RequestPath;
use super::{Entity, Resolved, content_type};
use crate::body::Content;
use crate::conditional::{Validators, whole_seconds};

const FILES: &[(&str, &[u8])] = &[
    ("index.html", include_bytes!("../../site/index.html")),
    ("netkit.png", include_bytes!("../../site/netkit.png")),
];

#[derive(Debug)]
pub struct Site {
    entities: Vec<(&'static str, Entity)>,
}

impl Site {
    pub fn new() -> Self {
        // The files change only with the binary; the start of this server
        // is as good a modification time as any, and the tags are hashes.
        let started = SystemTime::now();
        let entities = FILES
            .iter()
            .map(|&(name, bytes)| {
                let validators = Validators::new(
                    format!("\"{:x}-{:016x}\"", bytes.len(), fnv1a(bytes)),
                    whole_seconds(started),
                );
                let entity = Entity {
                    content: Content::Static(bytes),
                    len: bytes.len() as u64,
                    validators,
                    content_type: content_type(name.as_ref()),
                };
                (name, entity)
            })
            .collect();
        Self { entities }
    }

    pub fn resolve(&self, path: &RequestPath) -> Result<Resolved, OpenError> {
        let name = match path.segments() {
            [] => "index.html",
            [single] if !path.has_trailing_slash() => single.to_str().ok_or(OpenError::NotFound)?,
            _ => return Err(OpenError::NotFound),
        };
        let (name, entity) = self
            .entities
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .ok_or(OpenError::NotFound)?;
        Ok(Resolved::File {
            entity: entity.clone(),
            path: name.into(),
        })
    }
}

/// A fast, stable 64-bit hash, enough to tell versions of a file apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_its_files_only() {
        let site = Site::new();
        let get = |raw: &str| site.resolve(&RequestPath::parse(raw).unwrap());
        match get("/").unwrap() {
            Resolved::File { entity, .. } => {
                assert_eq!(entity.content_type, "text/html; charset=utf-8");
                assert!(entity.len > 500);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(get("/netkit.png"), Ok(Resolved::File { .. })));
        assert!(matches!(get("/netkit.png/"), Err(OpenError::NotFound)));
        assert!(matches!(get("/missing"), Err(OpenError::NotFound)));
        assert!(matches!(get("/a/index.html"), Err(OpenError::NotFound)));
    }
}
