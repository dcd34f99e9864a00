//! SMTP as the gateway's server reads it: paths and mailboxes, command lines,
//! the DATA stream, and the replies it sends.

pub mod address;
pub mod command;
pub mod data;
pub mod reply;
