//! DORA metrics (SPEC §19): the four keys from changes, deployments and incidents, folded
//! by the real worker, and the GitHub adapter that produces those events.

pub mod github;
pub mod scenario;
