//! What the archive records (`model::archive`: events, captures, outcomes,
//! header facts), and the capture of a journal report's original, which
//! needs this stage's journal-report reader.

pub use crate::model::archive::{Capture, Event, HeaderFacts, Outcome};
use crate::spool::{InspectionRecord, QueuedMessage};

impl Capture {
    /// The capture of the original inside journal report `report`, which
    /// arrived as `msg`: the report's envelope, the original's bytes.
    pub fn of_report(
        msg: &QueuedMessage,
        report: &super::journal_report::JournalReport,
        dlp: Option<InspectionRecord>,
    ) -> Self {
        // The content key (`sha256`) is set by the store from the bytes it keeps.
        let mut c = Capture::of(msg, &report.original, dlp);
        c.mail_from = report.sender.clone().unwrap_or_default();
        c.recipients = report
            .recipients
            .iter()
            .map(|a| Outcome::delivered(a))
            .collect();
        c.from_journal_report = true;
        c
    }
}
