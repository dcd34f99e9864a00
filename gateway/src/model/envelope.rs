//! Envelope parameters as SMTP gives them (MAIL and RCPT parameters, the
//! body type, DSN requests) and the envelope settings the config names. The
//! parser that makes them lives in `sealgate-parse`; these are its types.

pub use sealgate_parse::smtp::command::{
    BodyType, EnvelopeSyntax, MailParams, Notify, RcptParams, Ret,
};
pub use sealgate_parse::smtp::data::BareLineEnding;
