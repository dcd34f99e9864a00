//! The gateway's pure SMTP parsers, compiled on their own for fuzzing.
#![allow(dead_code)]

#[path = "../../gateway/src/smtp/address.rs"]
pub mod address;
#[path = "../../gateway/src/smtp/command.rs"]
pub mod command;
#[path = "../../gateway/src/smtp/data.rs"]
pub mod data;
#[path = "../../gateway/src/smtp/reply.rs"]
pub mod reply;
