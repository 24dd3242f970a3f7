//! The JSON API under `/api/v1/`, named after Mailpit's:
//!
//! - `GET messages?start=&limit=`, `GET search?query=&start=&limit=`: a page
//!   of summaries, newest first, with counts;
//! - `DELETE messages` (body `{"IDs": [...]}`, or none for all);
//! - `PUT messages` (body `{"IDs": [...], "Read": true}`; no IDs for all);
//! - `GET message/{ID}`: the message parsed; `DELETE message/{ID}`;
//! - `GET message/{ID}/raw`: the bytes as received; `.../headers`;
//! - `GET message/{ID}/part/{PartID}`: one decoded part (`?download=1`
//!   to save it);
//! - `GET events`: Server-Sent Events (`new`, `read`, `delete`, `clear`).

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::respond::{self, Body};
use super::{State, blocking, not_allowed, sse};
use crate::{Inbox, Parsed, Search, Summary};

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 1000;

/// One message: its place in the inbox and its MIME content.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    #[serde(rename = "ID")]
    id: String,
    read: bool,
    created: String,
    size: u64,
    #[serde(flatten)]
    parsed: Parsed,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Selection {
    #[serde(rename = "IDs", default)]
    ids: Vec<String>,
    #[serde(default)]
    read: Option<bool>,
}

pub async fn route(request: Request<Incoming>, rest: &str, state: &State) -> Response<Body> {
    let segments = rest.split('/').collect::<Vec<_>>();
    let method = request.method().clone();
    match (segments.as_slice(), &method) {
        (["messages"], &Method::GET) => list(&request, "", state).await,
        (["search"], &Method::GET) => {
            let query = respond::query(&request).remove("query").unwrap_or_default();
            list(&request, &query, state).await
        }
        (["messages"], &Method::DELETE) => delete_many(request, state).await,
        (["messages"], &Method::PUT) => mark(request, state).await,
        (["messages"], _) => not_allowed(&[Method::GET, Method::PUT, Method::DELETE]),
        (["message", id], &Method::GET) => {
            let id = (*id).to_owned();
            match blocking(state, move |inbox| inbox.parsed(&id)).await {
                Ok((summary, parsed)) => respond::json(&message(summary, parsed)),
                Err(err) => respond::inbox_error(&err),
            }
        }
        (["message", id], &Method::DELETE) => {
            let ids = vec![(*id).to_owned()];
            let check = ids[0].clone();
            let result = blocking(state, move |inbox| {
                inbox.summary(&check)?;
                inbox.delete(&ids)
            })
            .await;
            ok_or_error(result)
        }
        (["message", id, "raw"], &Method::GET) => {
            let id = (*id).to_owned();
            let download = respond::query(&request).contains_key("download");
            match blocking(state, {
                let id = id.clone();
                move |inbox| inbox.raw(&id)
            })
            .await
            {
                Ok(raw) => {
                    let mut response =
                        respond::with_type(StatusCode::OK, "text/plain; charset=utf-8", raw);
                    if download {
                        disposition(&mut response, "attachment", &format!("{id}.eml"));
                    }
                    response
                }
                Err(err) => respond::inbox_error(&err),
            }
        }
        (["message", id, "headers"], &Method::GET) => {
            let id = (*id).to_owned();
            match blocking(state, move |inbox| inbox.parsed(&id)).await {
                Ok((_, parsed)) => respond::json(&parsed.headers),
                Err(err) => respond::inbox_error(&err),
            }
        }
        (["message", id, "part", part], &Method::GET) => {
            let Ok(part_id) = part.parse::<usize>() else {
                return respond::error(StatusCode::NOT_FOUND, "no such part");
            };
            let id = (*id).to_owned();
            let download = respond::query(&request).contains_key("download");
            match blocking(state, move |inbox| inbox.part(&id, part_id)).await {
                Ok(part) => {
                    let mut response =
                        respond::with_type(StatusCode::OK, &part.content_type, part.bytes);
                    let kind = if download { "attachment" } else { "inline" };
                    let name = if part.file_name.is_empty() {
                        format!("part-{part_id}")
                    } else {
                        part.file_name
                    };
                    disposition(&mut response, kind, &name);
                    response
                }
                Err(err) => respond::inbox_error(&err),
            }
        }
        (["events"], &Method::GET) => sse::stream(&state.inbox, state.shutdown.clone()),
        _ => respond::error(StatusCode::NOT_FOUND, "no such API route"),
    }
}

fn message(summary: Summary, parsed: Parsed) -> Message {
    Message {
        id: summary.id,
        read: summary.read,
        created: summary.created,
        size: summary.size,
        parsed,
    }
}

async fn list(request: &Request<Incoming>, query: &str, state: &State) -> Response<Body> {
    let params = respond::query(request);
    let start = params
        .get("start")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit = params
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let search = match Search::parse(query) {
        Ok(search) => search,
        Err(err) => return respond::error(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    match blocking(state, move |inbox| inbox.list(&search, start, limit)).await {
        Ok(listing) => respond::json(&listing),
        Err(err) => respond::inbox_error(&err),
    }
}

async fn selection(request: Request<Incoming>) -> Result<Selection, Response<Body>> {
    let body = respond::read_body(request).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Selection::default());
    }
    serde_json::from_slice(&body).map_err(|err| {
        respond::error(
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"IDs\": [...]}}: {err}"),
        )
    })
}

async fn delete_many(request: Request<Incoming>, state: &State) -> Response<Body> {
    let selection = match selection(request).await {
        Ok(selection) => selection,
        Err(response) => return response,
    };
    let result = blocking(state, move |inbox| {
        if selection.ids.is_empty() {
            inbox.delete_all()
        } else {
            inbox.delete(&selection.ids)
        }
    })
    .await;
    ok_or_error(result)
}

async fn mark(request: Request<Incoming>, state: &State) -> Response<Body> {
    let selection = match selection(request).await {
        Ok(selection) => selection,
        Err(response) => return response,
    };
    let Some(read) = selection.read else {
        return respond::error(StatusCode::BAD_REQUEST, "expected {\"Read\": true|false}");
    };
    let result = blocking(state, move |inbox: &Inbox| {
        let ids = if selection.ids.is_empty() {
            all_ids(inbox)?
        } else {
            selection.ids
        };
        inbox.set_read(&ids, read)
    })
    .await;
    ok_or_error(result)
}

fn all_ids(inbox: &Inbox) -> Result<Vec<String>, crate::InboxError> {
    let listing = inbox.list(&Search::default(), 0, u64::MAX)?;
    Ok(listing.messages.into_iter().map(|m| m.id).collect())
}

fn ok_or_error(result: Result<(), crate::InboxError>) -> Response<Body> {
    match result {
        Ok(()) => respond::with_type(StatusCode::OK, "application/json", "\"ok\""),
        Err(err) => respond::inbox_error(&err),
    }
}

/// `Content-Disposition` with the name spelled for every browser (RFC 6266).
fn disposition(response: &mut Response<Body>, kind: &str, name: &str) {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let value = format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent(name)
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
