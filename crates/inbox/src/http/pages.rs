//! The inbox's HTML pages, written on the server so they read without
//! JavaScript: the list (search, paging, delete), one message (its HTML
//! in a sandboxed frame, text, headers, raw source, parts, attachments),
//! and the message's HTML itself under a policy that lets nothing run
//! and nothing load from elsewhere unless the reader asks for remote images.

use std::fmt::Write;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::respond::{self, Body, component, escape};
use super::{State, blocking, not_allowed};
use crate::{Listing, Mailbox, Parsed, Part, Search, Summary};

const PAGE_SIZE: u64 = 50;
const STYLE: &str = include_str!("../../assets/inbox.css");
const SCRIPT: &str = include_str!("../../assets/inbox.js");

/// The message's HTML: sandboxed (no scripts, forms, popups or top
/// navigation, an origin of its own), images only from its own parts.
const HTML_POLICY: &str = "sandbox; default-src 'none'; img-src 'self' data:; \
style-src 'unsafe-inline'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
/// The same with images from anywhere, once the reader asks.
const HTML_POLICY_REMOTE: &str = "sandbox; default-src 'none'; img-src 'self' data: http: https:; \
style-src 'unsafe-inline'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

pub async fn route(request: Request<Incoming>, path: &str, state: &State) -> Response<Body> {
    let segments = path.trim_start_matches('/').split('/').collect::<Vec<_>>();
    let method = request.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    match segments.as_slice() {
        [""] if get => list(&request, state).await,
        ["static", "inbox.css"] if get => {
            respond::with_type(StatusCode::OK, "text/css; charset=utf-8", STYLE)
        }
        ["static", "inbox.js"] if get => {
            respond::with_type(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT)
        }
        ["message", id] if get => message(&request, id, state).await,
        ["message", id, "html"] if get => html_document(&request, id, state).await,
        ["message", id, "delete"] if method == Method::POST => {
            let ids = vec![(*id).to_owned()];
            match blocking(state, move |inbox| inbox.delete(&ids)).await {
                Ok(()) => respond::see_other("/"),
                Err(err) => respond::inbox_error(&err),
            }
        }
        ["message", id, "unread"] if method == Method::POST => {
            let ids = vec![(*id).to_owned()];
            match blocking(state, move |inbox| inbox.set_read(&ids, false)).await {
                Ok(()) => respond::see_other("/"),
                Err(err) => respond::inbox_error(&err),
            }
        }
        ["delete-all"] if method == Method::POST => {
            match blocking(state, |inbox| inbox.delete_all()).await {
                Ok(()) => respond::see_other("/"),
                Err(err) => respond::inbox_error(&err),
            }
        }
        [""] | ["static", _] | ["message", _] | ["message", _, "html"] => {
            not_allowed(&[Method::GET])
        }
        ["message", _, "delete" | "unread"] | ["delete-all"] => not_allowed(&[Method::POST]),
        _ => respond::page(
            StatusCode::NOT_FOUND,
            layout("Not found", "<h2>Not found</h2>"),
        ),
    }
}

async fn list(request: &Request<Incoming>, state: &State) -> Response<Body> {
    let params = respond::query(request);
    let query = params.get("q").cloned().unwrap_or_default();
    let start: u64 = params
        .get("start")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let search = match Search::parse(&query) {
        Ok(search) => search,
        Err(err) => {
            let body = format!(
                "{}<p role=\"alert\">{}</p>",
                search_form(&query),
                escape(&err.to_string())
            );
            return respond::page(StatusCode::BAD_REQUEST, layout("Inbox", &body));
        }
    };
    let live = search.is_empty() && start == 0;
    match blocking(state, move |inbox| inbox.list(&search, start, PAGE_SIZE)).await {
        Ok(listing) => respond::page(
            StatusCode::OK,
            layout("Inbox", &list_body(&listing, &query, live)),
        ),
        Err(err) => respond::inbox_error(&err),
    }
}

fn search_form(query: &str) -> String {
    format!(
        "<form class=\"search\" role=\"search\" action=\"/\" method=\"get\">\
<label for=\"q\">Search</label> \
<input id=\"q\" name=\"q\" type=\"search\" value=\"{}\" placeholder=\"from:ann subject:invoice is:unread has:attachment after:2026-01-01\"> \
<button type=\"submit\">Search</button></form>",
        escape(query)
    )
}

fn list_body(listing: &Listing, query: &str, live: bool) -> String {
    let mut html = search_form(query);
    let _ = write!(
        html,
        "<form class=\"delete-all\" action=\"/delete-all\" method=\"post\"><button type=\"submit\">Delete all</button></form>\
<h2 id=\"counts\" data-total=\"{total}\" data-unread=\"{unread}\">{total} messages, {unread} unread</h2>",
        total = listing.total,
        unread = listing.unread,
    );
    if !query.is_empty() {
        let _ = write!(
            html,
            "<p id=\"matches\">{} matching <q>{}</q> · <a href=\"/\">show all</a></p>",
            listing.messages_count,
            escape(query)
        );
    }
    let _ = write!(
        html,
        "<table id=\"messages\" data-live=\"{}\" data-page-size=\"{PAGE_SIZE}\"><caption class=\"visually-hidden\">Messages, newest first</caption>\
<thead><tr><th scope=\"col\">From</th><th scope=\"col\">To</th><th scope=\"col\">Subject</th><th scope=\"col\">Received</th><th scope=\"col\">Size</th></tr></thead><tbody>",
        u8::from(live)
    );
    for summary in &listing.messages {
        html.push_str(&row(summary));
    }
    html.push_str("</tbody></table>");
    if listing.messages.is_empty() {
        html.push_str("<p id=\"empty\">No messages.</p>");
    }
    let end = listing.start + listing.messages.len() as u64;
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("q={}&amp;", component(query))
    };
    html.push_str("<nav class=\"pages\" aria-label=\"Pages\">");
    if listing.start > 0 {
        let _ = write!(
            html,
            "<a rel=\"prev\" href=\"/?{q}start={}\">← Newer</a> ",
            listing.start.saturating_sub(PAGE_SIZE)
        );
    }
    if !listing.messages.is_empty() {
        let _ = write!(
            html,
            "<span>{}–{end} of {}</span>",
            listing.start + 1,
            listing.messages_count
        );
    }
    if end < listing.messages_count {
        let _ = write!(
            html,
            " <a rel=\"next\" href=\"/?{q}start={end}\">Older →</a>"
        );
    }
    html.push_str("</nav>");
    html
}

/// One row of the list; `inbox.js` builds the same for live arrivals.
fn row(summary: &Summary) -> String {
    let subject = if summary.subject.is_empty() {
        "(no subject)"
    } else {
        &summary.subject
    };
    let attachment = if summary.attachments > 0 {
        format!(
            " <span class=\"attachment\" title=\"{n} attachment(s)\" aria-label=\"{n} attachment(s)\">📎</span>",
            n = summary.attachments
        )
    } else {
        String::new()
    };
    format!(
        "<tr class=\"{class}\" data-id=\"{id}\"><td>{from}</td><td>{to}</td>\
<td><a href=\"/message/{link}\">{subject}</a>{attachment}</td>\
<td><time datetime=\"{created}\">{when}</time></td><td>{size}</td></tr>",
        class = if summary.read { "read" } else { "unread" },
        id = escape(&summary.id),
        from = summary.from.as_ref().map(mailbox).unwrap_or_default(),
        to = mailboxes(&summary.to),
        link = escape(&component(&summary.id)),
        subject = escape(subject),
        created = escape(&summary.created),
        when = escape(&when(&summary.created)),
        size = size(summary.size),
    )
}

async fn message(request: &Request<Incoming>, id: &str, state: &State) -> Response<Body> {
    let params = respond::query(request);
    let owned = id.to_owned();
    let result = blocking(state, move |inbox| {
        let parsed = inbox.parsed(&owned)?;
        // Opening a message reads it, as in any mail client.
        inbox.set_read(std::slice::from_ref(&owned), true)?;
        Ok(parsed)
    })
    .await;
    let (summary, parsed) = match result {
        Ok(found) => found,
        Err(err) => {
            let status = respond::inbox_error(&err).status();
            return respond::page(
                status,
                layout(
                    "Not found",
                    &format!(
                        "<h2>{}</h2><p><a href=\"/\">Back to the inbox</a></p>",
                        escape(&err.to_string())
                    ),
                ),
            );
        }
    };
    let default_view = if parsed.html.is_empty() {
        "text"
    } else {
        "html"
    };
    let view = params.get("view").map_or(default_view, String::as_str);
    let remote = params.contains_key("remote");
    let title = if parsed.subject.is_empty() {
        "(no subject)".to_owned()
    } else {
        parsed.subject.clone()
    };
    let link = escape(&component(&summary.id));
    let mut html = format!(
        "<p><a href=\"/\">← Inbox</a></p><article aria-labelledby=\"subject\"><h2 id=\"subject\">{}</h2><dl class=\"envelope\">",
        escape(&title)
    );
    let mut field = |name: &str, value: String| {
        if !value.is_empty() {
            let _ = write!(html, "<dt>{name}</dt><dd>{value}</dd>");
        }
    };
    field(
        "From",
        parsed.from.as_ref().map(mailbox).unwrap_or_default(),
    );
    field("To", mailboxes(&parsed.to));
    field("Cc", mailboxes(&parsed.cc));
    field("Reply-To", mailboxes(&parsed.reply_to));
    field("Date", escape(parsed.date.as_deref().unwrap_or_default()));
    field("Received", escape(&when(&summary.created)));
    field("Size", size(summary.size));
    let _ = write!(
        html,
        "</dl><div class=\"actions\">\
<form action=\"/message/{link}/unread\" method=\"post\"><button type=\"submit\">Mark unread</button></form>\
<form action=\"/message/{link}/delete\" method=\"post\"><button type=\"submit\">Delete</button></form>\
<a href=\"/api/v1/message/{link}/raw?download=1\">Download .eml</a></div>"
    );
    html.push_str("<nav class=\"views\" aria-label=\"Views\">");
    for (name, label) in [
        ("html", "HTML"),
        ("text", "Text"),
        ("headers", "Headers"),
        ("raw", "Raw"),
        ("parts", "Parts"),
    ] {
        let current = if name == view {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            html,
            "<a href=\"/message/{link}?view={name}\"{current}>{label}</a> "
        );
    }
    html.push_str("</nav><section id=\"view\">");
    match view {
        "text" => {
            let _ = write!(
                html,
                "<h3>Text</h3><pre class=\"text\">{}</pre>",
                escape(&parsed.text)
            );
        }
        "headers" => html.push_str(&headers_table(&parsed)),
        "raw" => {
            let raw = match blocking(state, {
                let id = summary.id.clone();
                move |inbox| inbox.raw(&id)
            })
            .await
            {
                Ok(raw) => raw,
                Err(err) => return respond::inbox_error(&err),
            };
            let _ = write!(
                html,
                "<h3>Raw source</h3><pre class=\"raw\">{}</pre>",
                escape(&String::from_utf8_lossy(&raw))
            );
        }
        "parts" => html.push_str(&parts_table(&link, &parsed.parts)),
        _ if parsed.html.is_empty() => {
            html.push_str("<h3>HTML</h3><p>This message has no HTML part.</p>")
        }
        _ => {
            let (src, note) = if remote {
                (
                    format!("/message/{link}/html?remote=1"),
                    format!(
                        "Remote images are shown. <a href=\"/message/{link}?view=html\">Block them</a>"
                    ),
                )
            } else {
                (
                    format!("/message/{link}/html"),
                    format!(
                        "Remote images are blocked. <a id=\"show-remote\" href=\"/message/{link}?view=html&amp;remote=1\">Show remote images</a>"
                    ),
                )
            };
            let _ = write!(
                html,
                "<h3>HTML</h3><p class=\"note\">{note}</p>\
<iframe id=\"message-html\" title=\"The message's HTML\" sandbox=\"\" referrerpolicy=\"no-referrer\" src=\"{src}\"></iframe>"
            );
        }
    }
    html.push_str("</section>");
    let attachments = parsed
        .attachments
        .iter()
        .chain(&parsed.inline)
        .collect::<Vec<_>>();
    if !attachments.is_empty() {
        html.push_str("<section aria-labelledby=\"attachments\"><h3 id=\"attachments\">Attachments</h3><ul class=\"attachments\">");
        for part in attachments {
            let name = if part.file_name.is_empty() {
                format!("part-{}", part.part_id)
            } else {
                part.file_name.clone()
            };
            let _ = write!(
                html,
                "<li><a href=\"/api/v1/message/{link}/part/{id}?download=1\" download=\"{name}\">{name}</a> \
<span class=\"meta\">{ctype}, {size}</span></li>",
                id = part.part_id,
                name = escape(&name),
                ctype = escape(&part.content_type),
                size = size(part.size as u64),
            );
        }
        html.push_str("</ul></section>");
    }
    html.push_str("</article>");
    respond::page(StatusCode::OK, layout(&title, &html))
}

fn headers_table(parsed: &Parsed) -> String {
    let mut html = String::from(
        "<h3>Headers</h3><table class=\"headers\"><caption class=\"visually-hidden\">Headers in the order received</caption><tbody>",
    );
    for header in &parsed.headers {
        let _ = write!(
            html,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape(&header.name),
            escape(&header.value)
        );
    }
    html.push_str("</tbody></table>");
    html
}

fn parts_table(link: &str, parts: &[Part]) -> String {
    let mut html = String::from(
        "<h3>MIME parts</h3><table class=\"parts\"><thead><tr><th scope=\"col\">Part</th><th scope=\"col\">Type</th>\
<th scope=\"col\">Name</th><th scope=\"col\">Content-ID</th><th scope=\"col\">Size</th></tr></thead><tbody>",
    );
    for part in parts {
        let _ = write!(
            html,
            "<tr><td><a href=\"/api/v1/message/{link}/part/{id}\">{id}</a></td><td>{ctype}</td><td>{name}</td><td>{cid}</td><td>{size}</td></tr>",
            id = part.part_id,
            ctype = escape(&part.content_type),
            name = escape(&part.file_name),
            cid = escape(&part.content_id),
            size = size(part.size as u64),
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// The message's HTML as a document of its own, its `cid:` references
/// pointing at the parts they name.
async fn html_document(request: &Request<Incoming>, id: &str, state: &State) -> Response<Body> {
    let remote = respond::query(request).contains_key("remote");
    let owned = id.to_owned();
    let (summary, parsed) = match blocking(state, move |inbox| inbox.parsed(&owned)).await {
        Ok(found) => found,
        Err(err) => return respond::inbox_error(&err),
    };
    let mut html = parsed.html;
    let link = component(&summary.id);
    for part in parsed
        .inline
        .iter()
        .chain(&parsed.attachments)
        .chain(&parsed.parts)
    {
        if !part.content_id.is_empty() {
            let target = format!("/api/v1/message/{link}/part/{}", part.part_id);
            html = html.replace(&format!("cid:{}", part.content_id), &target);
        }
    }
    let mut response = respond::with_type(StatusCode::OK, "text/html; charset=utf-8", html);
    let policy = if remote {
        HTML_POLICY_REMOTE
    } else {
        HTML_POLICY
    };
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    response
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · netkit inbox</title><link rel=\"stylesheet\" href=\"/static/inbox.css\">\
<script src=\"/static/inbox.js\" defer></script></head><body>\
<a class=\"skip\" href=\"#main\">Skip to content</a>\
<header><h1><a href=\"/\">netkit inbox</a></h1></header><main id=\"main\">{body}</main></body></html>",
        escape(title)
    )
}

/// `Name <address>` as HTML text: the address always shown, so a display
/// name cannot pass for another sender.
fn mailbox(mailbox: &Mailbox) -> String {
    if mailbox.name.is_empty() {
        escape(&mailbox.address)
    } else {
        format!(
            "<span class=\"name\">{}</span> <span class=\"address\">&lt;{}&gt;</span>",
            escape(&mailbox.name),
            escape(&mailbox.address)
        )
    }
}

fn mailboxes(list: &[Mailbox]) -> String {
    list.iter().map(mailbox).collect::<Vec<_>>().join(", ")
}

/// `2026-12-04T16:52:12Z` → `2026-12-04 16:52:12 UTC`.
fn when(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z') {
        Some(time) => format!("{} UTC", time.replacen('T', " ", 1)),
        None => rfc3339.replacen('T', " ", 1),
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_display_name_cannot_hide_the_address() {
        let forged = Mailbox {
            name: "<b>support@bank.example</b>".into(),
            address: "evil@attacker.example".into(),
        };
        let html = mailbox(&forged);
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;evil@attacker.example&gt;"));
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(when("2026-12-04T16:52:12Z"), "2026-12-04 16:52:12 UTC");
    }
}
