//! The portal's pages: plain HTML, no scripts, one stylesheet; every value
//! is escaped; forms carry their CSRF token; inputs have labels.

use super::view::Rendered;
use crate::model::escrow::{EscrowEntry, EscrowState};
use crate::seal::notice::html_escape as esc;

/// The stylesheet (served at `/portal.css`; the CSP allows no inline styles).
pub fn stylesheet(brand: &str) -> String {
    format!(
        "body{{font-family:system-ui,sans-serif;color:#1a1a1a;background:#f6f7f9;margin:0;line-height:1.5}}\n\
         header{{background:{brand};color:#fff;padding:.75rem 1.5rem}}\n\
         header a,header button{{color:#fff}}\n\
         main{{max-width:56rem;margin:1.5rem auto;background:#fff;padding:1.5rem;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.15)}}\n\
         label{{display:block;font-weight:600;margin-top:1rem}}\n\
         input[type=text],input[type=password],textarea{{width:100%;max-width:32rem;padding:.5rem;font-size:1rem;border:1px solid #555;border-radius:4px;box-sizing:border-box}}\n\
         textarea{{max-width:100%;min-height:10rem}}\n\
         button{{margin-top:1rem;padding:.5rem 1.25rem;font-size:1rem;background:{brand};color:#fff;border:0;border-radius:4px;cursor:pointer}}\n\
         button.link{{background:none;color:{brand};padding:0;text-decoration:underline}}\n\
         form.inline{{display:inline}}\n\
         header button.link{{color:#fff;margin:0;font-size:inherit}}\n\
         :focus{{outline:3px solid #f0a500;outline-offset:2px}}\n\
         .error{{color:#a30000;font-weight:600}}\n\
         .note{{color:#444}}\n\
         dl.fields{{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}}\n\
         dl.fields dt{{font-weight:600}}\n\
         .body{{border-top:1px solid #ccc;margin-top:1rem;padding-top:1rem;overflow-wrap:anywhere}}\n\
         pre{{white-space:pre-wrap;font-family:inherit}}\n\
         table{{border-collapse:collapse;width:100%}}\n\
         td,th{{text-align:left;padding:.35rem;border-bottom:1px solid #ddd}}\n\
         .skip{{position:absolute;left:-999px}}\n\
         .skip:focus{{left:1rem;top:1rem;background:#fff;color:#000;padding:.5rem}}\n"
    )
}

/// Who is signed in, for the page header.
pub struct SignedIn<'a> {
    /// Their address.
    pub address: &'a str,
    /// The CSRF token for their forms.
    pub csrf: &'a str,
}

/// A whole page.
pub fn page(org: &str, title: &str, who: Option<&SignedIn>, body: &str) -> String {
    let nav = match who {
        Some(w) => format!(
            "<nav aria-label=\"Account\"><span>{}</span> · <a href=\"/inbox\">Your messages</a> · \
             <form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" class=\"link\">Sign out</button></form></nav>",
            esc(w.address),
            esc(w.csrf)
        ),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {org}</title><link rel=\"stylesheet\" href=\"/portal.css\"></head>\n\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><strong>{org}</strong> · Secure messages {nav}</header>\n\
         <main id=\"main\"><h1>{title}</h1>\n{body}\n</main></body></html>\n",
        title = esc(title),
        org = esc(org),
    )
}

/// The hidden CSRF field.
fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// `pat@example.org` → `p**@example.org`: enough to recognise, not to harvest.
pub fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!(
                "{first}{}@{domain}",
                "*".repeat(local.chars().count().saturating_sub(1).min(6))
            )
        }
        None => "***".into(),
    }
}

/// A message to the reader, announced to screen readers.
fn alert(message: Option<&str>) -> String {
    message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>\n", esc(m)))
        .unwrap_or_default()
}

/// The sign-in page for a link: a code to the address, or a password.
pub fn sign_in(
    token: &str,
    address: &str,
    csrf: &str,
    password: bool,
    message: Option<&str>,
) -> String {
    let mut b = alert(message);
    b.push_str(&format!(
        "<p>A secure message is waiting for <strong>{}</strong>. To read it, confirm that this address is yours.</p>\n",
        esc(&masked(address))
    ));
    if password {
        b.push_str(&format!(
            "<form method=\"post\" action=\"/m/{t}/login\">{c}\
             <label for=\"password\">Your portal password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in</button></form>\n\
             <p class=\"note\">Forgot your password? You can sign in with a code instead.</p>\n",
            t = esc(token),
            c = csrf_field(csrf)
        ));
    }
    b.push_str(&format!(
        "<form method=\"post\" action=\"/m/{t}/code\">{c}\
         <button type=\"submit\" id=\"send-code\">Send me a code by e-mail</button></form>\n\
         <form method=\"post\" action=\"/m/{t}/verify\">{c}\
         <label for=\"code\">Code from the e-mail</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"12\">\
         <button type=\"submit\" id=\"verify\">Continue</button></form>\n",
        t = esc(token),
        c = csrf_field(csrf)
    ));
    b
}

/// The choose-a-password page.
pub fn set_password(csrf: &str, next: &str, message: Option<&str>) -> String {
    let mut b = alert(message);
    b.push_str(&format!(
        "<p>Choose a password for your next visits (at least {} characters), so you need no code next time.</p>\n\
         <form method=\"post\" action=\"/password\">{}\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"password\">New password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\" required>\
         <label for=\"confirm\">The same password again</label>\
         <input type=\"password\" id=\"confirm\" name=\"confirm\" autocomplete=\"new-password\" required>\
         <button type=\"submit\" id=\"save-password\">Save password</button></form>\n\
         <p><a href=\"{}\" id=\"skip-password\">Not now: go to the message</a></p>\n",
        super::auth::MIN_PASSWORD,
        csrf_field(csrf),
        esc(next),
        esc(next),
    ));
    b
}

fn state_name(s: EscrowState) -> &'static str {
    match s {
        EscrowState::Unread => "new",
        EscrowState::Read => "read",
        EscrowState::Replied => "replied",
        EscrowState::Revoked => "withdrawn",
        EscrowState::Expired => "expired",
    }
}

/// The message page.
pub fn message(
    entry: &EscrowEntry,
    r: &Rendered,
    csrf: &str,
    max_reply: usize,
    notice: Option<&str>,
) -> String {
    let mut b = String::new();
    if let Some(n) = notice {
        b.push_str(&format!("<p role=\"status\">{}</p>\n", esc(n)));
    }
    b.push_str("<dl class=\"fields\">");
    for (k, v) in [
        ("From", &r.from),
        ("To", &r.to),
        ("Cc", &r.cc),
        ("Date", &r.date),
        ("Subject", &r.subject),
    ] {
        if !v.is_empty() {
            b.push_str(&format!("<dt>{k}</dt><dd>{}</dd>", esc(v)));
        }
    }
    b.push_str("</dl>\n");
    b.push_str(&format!(
        "<p class=\"note\">Available until {}.</p>\n",
        entry.expires_at.format("%-d %B %Y")
    ));
    b.push_str("<section class=\"body\" aria-label=\"Message\" id=\"message-body\">");
    match (&r.html, &r.text) {
        // Sanitised by ammonia; the CSP forbids scripts besides.
        (Some(html), _) => b.push_str(html),
        (None, Some(text)) => b.push_str(&format!("<pre>{}</pre>", esc(text))),
        (None, None) => b.push_str("<p class=\"note\">(no text)</p>"),
    }
    b.push_str("</section>\n");
    if !r.attachments.is_empty() {
        b.push_str("<h2>Attachments</h2><ul id=\"attachments\">");
        for a in &r.attachments {
            b.push_str(&format!(
                "<li><a href=\"/msg/{}/a/{}\" download>{}</a> ({} bytes)</li>",
                esc(&entry.id),
                a.index,
                esc(&a.name),
                a.size
            ));
        }
        b.push_str("</ul>\n");
    }
    b.push_str(&format!(
        "<h2>Reply</h2>\n<form method=\"post\" action=\"/msg/{id}/reply\" enctype=\"multipart/form-data\">{c}\
         <label for=\"reply-text\">Your reply</label>\
         <textarea id=\"reply-text\" name=\"text\" required></textarea>\
         <label><input type=\"checkbox\" name=\"all\" value=\"1\"> Reply to everyone in {org_hint}</label>\
         <label for=\"files\">Attach files (at most {mb} MB in all)</label>\
         <input type=\"file\" id=\"files\" name=\"files\" multiple>\
         <button type=\"submit\" id=\"send-reply\">Send reply</button></form>\n",
        id = esc(&entry.id),
        c = csrf_field(csrf),
        org_hint = "the sender's organisation",
        mb = max_reply / (1024 * 1024),
    ));
    b
}

/// The list of the recipient's messages.
pub fn inbox(entries: &[(EscrowEntry, String)]) -> String {
    if entries.is_empty() {
        return "<p>There are no messages for you.</p>".into();
    }
    let mut b = String::from(
        "<table><caption class=\"note\">Messages held for you</caption><thead><tr><th scope=\"col\">From</th><th scope=\"col\">Subject</th><th scope=\"col\">Received</th><th scope=\"col\">Status</th></tr></thead><tbody>",
    );
    for (e, subject) in entries {
        let subject = if subject.is_empty() {
            "(no subject)"
        } else {
            subject
        };
        b.push_str(&format!(
            "<tr><td>{}</td><td><a href=\"/msg/{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            esc(&e.sender),
            esc(&e.id),
            esc(subject),
            e.created_at.format("%-d %B %Y %H:%M UTC"),
            state_name(e.state)
        ));
    }
    b.push_str("</tbody></table>");
    b
}

/// A page that only says something (errors, expired, withdrawn...).
pub fn notice(text: &str) -> String {
    format!("<p>{}</p>", esc(text))
}

/// The sender's withdraw page.
pub fn revoke(token: &str, entry: &EscrowEntry, csrf: &str) -> String {
    format!(
        "<p>Withdraw the secure message to <strong>{}</strong> sent on {}? It is erased at once and can no longer be read.</p>\
         <form method=\"post\" action=\"/r/{}\">{}<button type=\"submit\" id=\"withdraw\">Withdraw the message</button></form>",
        esc(&entry.recipient),
        entry.created_at.format("%-d %B %Y %H:%M UTC"),
        esc(token),
        csrf_field(csrf)
    )
}
