//! The addresses of the six actors, set once all are started (by the
//! wiring, `daemon/mod.rs`) and read through [`super::engine::Shared`].

use super::bus_ingest::BusIngest;
use super::campaign_clusterer::CampaignClusterer;
use super::control::Control;
use super::heartbeat::Heartbeat;
use super::identity_clusterer::IdentityClusterer;
use super::outbox::Publisher;
use actix::Addr;

/// The addresses of every actor, set once all are started.
pub struct Addrs {
    pub bus: Addr<BusIngest>,
    pub identity: Addr<IdentityClusterer>,
    pub campaign: Addr<CampaignClusterer>,
    pub publisher: Addr<Publisher>,
    pub heartbeat: Addr<Heartbeat>,
    pub control: Addr<Control>,
}
