//! What the gateway tells about itself: the metrics registry every stage
//! writes (served at `/metrics` by the admin listener) and the log set-up.
//! Ground floor: imports nothing of the stages.

pub mod logging;
pub mod metrics;
