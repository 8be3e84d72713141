//! The knowledge graph: what Sparky knows around an event, gathered before deciding.
//!
//! - [`catalog`]: the service catalog (Backstage `catalog-info.yaml` entities): owners,
//!   dependencies, links, Sparky's own annotations; reloaded with the playbooks.
//! - [`deploy`]: deploys read from deploy events of every sender.
//! - [`history`]: past incidents, what was done and whether it worked.
//! - [`snapshot`]: [`Knowledge`], the indexed snapshot one decision reads (the `kg::`
//!   functions of conditions, the guards, the analyzer and the context package).
//! - [`service`]: which service an event is about, by label order and catalog lookup.
//! - [`tokens`]: the token inventory (catalog tokens, GitHub's expiry header, HTTP
//!   inventories) that PB-003 reads.
//!
//! The dynamic part (deploys, incidents, runs) is persisted in the store; the daemon gathers
//! the part a batch of events needs before deciding, so nothing here does I/O.

pub mod catalog;
pub mod deploy;
pub mod history;
pub mod service;
pub mod snapshot;
pub mod tokens;

pub use catalog::Catalog;
pub use deploy::{Deploy, DeployState, deploy_of};
pub use history::PastIncident;
pub use service::{ServiceMatch, find_service, resolve_service};
pub use snapshot::Knowledge;
