//! Consumer groups over HTTP: `GET …/consume?group=` (checked, and the group created, before the
//! upgrade), `GET /v1/groups`, `GET /v1/channels/{channel}/groups[/{group}]` and
//! `DELETE /v1/channels/{channel}/groups/{group}`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use draft_http::auth::Validity;
use draft_http::{Actor, ApiError, Query, rfc3339};
use draft_log::{PartitionHead, PartitionName};

use crate::broker::Catalyst;
use crate::channel_name::{ChannelName, ChannelNameError};
use crate::cloudevent::{Filter, Pattern};
use crate::error::{invalid_channel, log_error};
use crate::group_session;
use crate::group_wire::{GroupInfo, GroupList, GroupMember};
use crate::groups::{Group, GroupKey, GroupName, Start, Wanted, not_found};
use crate::query::resolve_start;
use crate::wire::SUBPROTOCOL;

/// The shortest and longest `timeout_ms` a group may have.
const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;

/// A consumer connection that names a group.
pub(crate) struct Connect<'a> {
    pub(crate) channel: PartitionName,
    pub(crate) group: &'a str,
    pub(crate) query: &'a Query,
    pub(crate) actor: Actor,
    pub(crate) address: SocketAddr,
    /// How long the member's token stays good (its socket closes when it lapses).
    pub(crate) credential: Option<Validity>,
}

/// A channel consumer groups may be on: one users produce to.
fn group_channel(channel: PartitionName) -> Result<ChannelName, ApiError> {
    ChannelName::try_from(channel).map_err(|e| match e {
        ChannelNameError::Reserved(name) => invalid_channel(format!(
            "channel {name:?} is reserved for Draft: consumer groups are for the channels \
             users produce to"
        )),
        e => e.into(),
    })
}

fn group_key(channel: &str, group: &str) -> Result<GroupKey, ApiError> {
    let channel = crate::channel::channel(channel)?;
    Ok(GroupKey {
        channel: group_channel(channel)?,
        group: GroupName::parse(group)?,
    })
}

/// `GET /v1/channels/{channel}/consume?group=NAME[&from=][&type=][&source=][&timeout_ms=]`:
/// everything is checked, and a new group created (from `from`), before the upgrade.
pub(crate) async fn consume(
    state: Catalyst,
    connect: Connect<'_>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Connect {
        channel,
        group,
        query,
        actor,
        address,
        credential,
    } = connect;
    let key = GroupKey {
        channel: group_channel(channel)?,
        group: GroupName::parse(group)?,
    };
    let timeout_ms = match query.one("timeout_ms")? {
        None => None,
        Some(t) => Some(
            t.parse()
                .ok()
                .filter(|t| TIMEOUT_MS.contains(t))
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "timeout_ms must be {}..={} (milliseconds), not {t:?}",
                        TIMEOUT_MS.start(),
                        TIMEOUT_MS.end()
                    ))
                })?,
        ),
    };
    let wanted = Wanted {
        types: query.all("type").to_vec(),
        sources: query.all("source").to_vec(),
        timeout_ms,
    };
    let from = query.one("from")?.unwrap_or("latest");
    let offset = resolve_start(state.log(), key.channel.partition(), from).await?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::websocket_required(&format!("consume (subprotocol {SUBPROTOCOL})"), e)
    })?;
    let start = Start {
        offset: offset.0,
        from,
    };
    let settings = state.groups().ensure(&key, &wanted, start, &actor).await?;
    let filter = Filter {
        types: settings.types.iter().map(|t| Pattern::parse(t)).collect(),
        sources: settings.sources.iter().map(|s| Pattern::parse(s)).collect(),
    };
    Ok(draft_http::ws::limited(upgrade)
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| {
            group_session::run(state, key, filter, (address, credential), socket)
        }))
}

/// What the endpoints report of one group, given its channel's head (`None`: no event yet).
fn info(key: &GroupKey, group: &Group, head: Option<&PartitionHead>) -> GroupInfo {
    let position = group.committed_next();
    let lag = head.map_or(0, |h| h.next.0.saturating_sub(position.max(h.first.0)));
    let mut members = group.members().map(|m| GroupMember {
        address: m.address.to_string(),
        since: rfc3339(m.active_since_nanos.unwrap_or(m.joined_nanos)),
    });
    let active = members.next();
    let settings = group.settings();
    GroupInfo {
        channel: key.channel.to_string(),
        group: key.group.to_string(),
        committed_offset: group.committed(),
        acked_offset: group.acked(),
        lag,
        active,
        standbys: members.collect(),
        last_ack_time: group.last_ack_nanos().map(rfc3339),
        timeout_ms: settings.timeout_ms,
        types: settings.types.clone(),
        sources: settings.sources.clone(),
        created_time: rfc3339(group.created_nanos()),
        created_revision: group.revision(),
    }
}

/// The groups of `channel` (every channel if `None`), with their channels' heads.
async fn list_groups(
    state: &Catalyst,
    channel: Option<&ChannelName>,
) -> Result<Vec<GroupInfo>, ApiError> {
    let channels: Vec<ChannelName> = state.groups().read(|t| {
        let mut channels: Vec<ChannelName> =
            t.groups(channel).map(|(k, _)| k.channel.clone()).collect();
        channels.dedup();
        channels
    });
    let mut heads = BTreeMap::new();
    for c in channels {
        let head = state
            .log()
            .head(c.partition())
            .await
            .map_err(|e| log_error(&e))?;
        heads.insert(c, head);
    }
    Ok(state.groups().read(|t| {
        t.groups(channel)
            .map(|(k, g)| info(k, g, heads.get(&k.channel).and_then(Option::as_ref)))
            .collect()
    }))
}

/// `GET /v1/groups`: every group of every channel.
pub(crate) async fn list_all(State(state): State<Catalyst>) -> Result<Json<GroupList>, ApiError> {
    let groups = list_groups(&state, None).await?;
    Ok(Json(GroupList { groups }))
}

/// `GET /v1/channels/{channel}/groups`.
pub(crate) async fn list(
    State(state): State<Catalyst>,
    Path(channel): Path<String>,
) -> Result<Json<GroupList>, ApiError> {
    let channel = group_channel(crate::channel::channel(&channel)?)?;
    let groups = list_groups(&state, Some(&channel)).await?;
    Ok(Json(GroupList { groups }))
}

/// `GET /v1/channels/{channel}/groups/{group}`.
pub(crate) async fn get(
    State(state): State<Catalyst>,
    Path((channel, group)): Path<(String, String)>,
) -> Result<Json<GroupInfo>, ApiError> {
    let key = group_key(&channel, &group)?;
    let head = state
        .log()
        .head(key.channel.partition())
        .await
        .map_err(|e| log_error(&e))?;
    state
        .groups()
        .read(|t| t.get(&key).map(|g| info(&key, g, head.as_ref())))
        .map(Json)
        .ok_or_else(|| not_found(&key))
}

/// `DELETE /v1/channels/{channel}/groups/{group}`: 204 once deleted; 409 while members are
/// connected.
pub(crate) async fn delete(
    State(state): State<Catalyst>,
    Path((channel, group)): Path<(String, String)>,
    actor: Actor,
) -> Result<Response, ApiError> {
    let key = group_key(&channel, &group)?;
    state.groups().delete(&key, &actor).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
