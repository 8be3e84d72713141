//! L3: the escalation package and its delivery — Jira issues, PagerDuty incidents, Slack
//! messages — exactly once per incident key.
//!
//! Escalations are written to the outbox (`store::outbox`) in the same transaction as the
//! decision or the engine result that raises them; the delivery worker ([`outbox`]) sends
//! them with retries, in order per incident and destination, and the outbox survives
//! restarts. Each destination renders the one [`EscalationPackage`]:
//!
//! | file           | what it holds                                                  |
//! |----------------|----------------------------------------------------------------|
//! | `package.rs`   | the escalation package and the later notes (repeat, resolution) |
//! | `adf.rs`       | Jira Cloud bodies: Atlassian Document Format                   |
//! | `wiki.rs`      | Jira Server / Data Center bodies: wiki markup                  |
//! | `slack.rs`     | Slack Block Kit messages                                       |

pub mod adf;
pub mod delivery;
pub mod http;
pub mod jira;
pub mod package;
pub mod pagerduty;
pub mod slack;
pub mod wiki;

pub use package::{Attempt, EscalationPackage, IssueLink, Note};
