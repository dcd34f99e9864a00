//! The hash chain and its signed checkpoints: kept with the store
//! (`store::archive::chain`), named here too.

pub use crate::store::archive::chain::*;
