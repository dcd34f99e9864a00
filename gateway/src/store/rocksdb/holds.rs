//! Legal holds in `<data_dir>/archive-holds.json` (0640), a JSON list
//! changed under `archive-holds.lock`.

use super::json_file::JsonFile;
use crate::store::holds::{Hold, HoldStoreError, LegalHolds};
use async_trait::async_trait;
use std::path::Path;

/// The holds file of one data directory.
pub struct HoldFile(JsonFile);

impl HoldFile {
    /// The holds of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        HoldFile(JsonFile::new(
            data_dir,
            "archive-holds.json",
            0o640,
            "holds file",
        ))
    }
}

#[async_trait]
impl LegalHolds for HoldFile {
    async fn list(&self) -> Result<Vec<Hold>, HoldStoreError> {
        Ok(self.0.read()?)
    }

    async fn place(&self, hold: Hold) -> Result<(), HoldStoreError> {
        self.0.change(|holds: &mut Vec<Hold>| {
            if holds.iter().any(|h| h.name == hold.name) {
                return Err(HoldStoreError::Exists(hold.name.clone()));
            }
            holds.push(hold);
            Ok(())
        })
    }

    async fn release(&self, name: &str) -> Result<Hold, HoldStoreError> {
        self.0.change(|holds: &mut Vec<Hold>| {
            let at = holds
                .iter()
                .position(|h| h.name == name)
                .ok_or_else(|| HoldStoreError::Missing(name.to_string()))?;
            Ok(holds.remove(at))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_holds_file_keeps_the_promises() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        crate::store::conformance::legal_holds(&|| Box::new(HoldFile::new(&path))).await;
    }
}
