//! `dctl bench consume`: one WebSocket replaying a channel, as fast as the node sends; with
//! `--group`, as the member of a new consumer group acknowledging every `--ack-every` events.

use std::time::Duration;

use tokio::time::Instant;

use anyhow::bail;
use draft_catalyst::client::ClientError;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::args::{BENCH_MAX_SECS, BenchConsumeArgs};
use super::report::{Progress, Summary, mb_per_sec, ms, per_sec, thousands};
use super::{Socket, Target, close, close_reason, field, head, run_time};

pub(super) async fn run(args: BenchConsumeArgs) -> anyhow::Result<()> {
    let target = Target::new(&args.common)?;
    target.preflight().await?;
    let from = args.from.trim().to_ascii_lowercase();
    let expected = expected(&target, &from, args.common.count).await?;
    let (query, ack_every) = match &args.group {
        Some(group) => {
            new_group(&target, group).await?;
            (format!("from={from}&group={group}"), Some(args.ack_every))
        }
        None => (format!("from={from}"), None),
    };

    let started = Instant::now();
    let deadline = started + run_time(&args.common, BENCH_MAX_SECS);
    let mut socket = target.consume(&query, 128 * 1024).await?;
    let r = replay(&mut socket, expected, deadline, started, ack_every).await;
    let elapsed = started.elapsed();
    close(socket).await;

    let how = args.group.as_ref().map_or_else(String::new, |g| {
        format!(" as group {g} (an ack every {} events)", args.ack_every)
    });
    let mut summary = Summary::new(format!(
        "dctl bench consume: one WebSocket from {from}{how}, channel {} at {}",
        target.channel, target.base
    ));
    summary
        .row("duration", format!("{:.2} s", elapsed.as_secs_f64()))
        .row("events", thousands(r.received))
        .row("events/s", per_sec(r.received, elapsed))
        .row("received", mb_per_sec(r.bytes, elapsed))
        .row(
            "first event after",
            r.first_event
                .map_or_else(|| "-".to_owned(), |d| ms(d.as_nanos() as u64)),
        )
        .row(
            "offsets",
            match (r.first_offset, r.last_offset) {
                (Some(a), Some(b)) => format!("{a}..={b}"),
                _ => "-".to_owned(),
            },
        )
        .row("out of order", thousands(r.disorder));
    if ack_every.is_some() {
        summary.row("acks sent", thousands(r.acks));
    }
    summary.print();
    if let Some(failure) = r.failure {
        bail!(failure);
    }
    if r.disorder > 0 {
        bail!("{} events arrived out of offset order", r.disorder);
    }
    Ok(())
}

/// How many events a replay from `from` should receive: `--count`, else every event stored
/// from there.
async fn expected(target: &Target, from: &str, count: Option<u64>) -> anyhow::Result<u64> {
    let from_offset = match from {
        "earliest" | "latest" => None,
        other => Some(other.parse::<u64>().map_err(|_| {
            anyhow::anyhow!("--from must be earliest, latest or an offset, not {other:?}")
        })?),
    };
    let expected = match count {
        Some(count) => count,
        None if from == "latest" => bail!("with --from latest, say how many events with --count"),
        None => {
            let info = match target.client().channel(&target.channel).await {
                Ok(info) => info,
                Err(ClientError::Api { status: 404, .. }) => bail!(
                    "channel {} does not exist: fill it first with `dctl bench produce --channel {}`",
                    target.channel,
                    target.channel
                ),
                Err(e) => return Err(e.into()),
            };
            let end = info.last_offset.map_or(info.first_offset, |o| o + 1);
            end.saturating_sub(from_offset.unwrap_or(0).max(info.first_offset))
        }
    };
    if expected == 0 {
        bail!(
            "channel {} has no events from {from}: fill it first with `dctl bench produce`",
            target.channel
        );
    }
    Ok(expected)
}

/// Checks that `group` does not exist yet: an existing group would resume from its own
/// committed offset, not `--from`.
async fn new_group(target: &Target, group: &str) -> anyhow::Result<()> {
    match target.client().group(&target.channel, group).await {
        Err(ClientError::Api { status: 404, .. }) => Ok(()),
        Ok(_) => bail!(
            "group {group} of channel {} exists and would resume where it stopped: pick a new \
             --group name (or delete it: DELETE /v1/channels/{}/groups/{group})",
            target.channel,
            target.channel
        ),
        Err(e) => Err(e.into()),
    }
}

/// What a replay saw.
#[derive(Default)]
struct Replay {
    received: u64,
    bytes: u64,
    /// Acknowledgements sent (group members).
    acks: u64,
    /// Events whose offset did not follow the previous one's.
    disorder: u64,
    first_offset: Option<u64>,
    last_offset: Option<u64>,
    /// How long after the start the first event arrived.
    first_event: Option<Duration>,
    failure: Option<String>,
}

/// Reads `expected` events (or until `deadline`), checking that offsets follow each other;
/// with `ack_every`, acknowledges every that many events and the last one.
async fn replay(
    socket: &mut Socket,
    expected: u64,
    deadline: Instant,
    started: Instant,
    ack_every: Option<u64>,
) -> Replay {
    let progress = Progress::new(started);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.reset();
    let mut last_tick = 0;
    let mut r = Replay::default();
    while r.received < expected {
        let message = tokio::select! {
            m = tokio::time::timeout_at(deadline, socket.next()) => m,
            _ = tick.tick() => {
                progress.line(&format!("{} events/s", thousands(r.received - last_tick)));
                last_tick = r.received;
                continue;
            }
        };
        let received = r.received;
        match message {
            Err(_) => {
                r.failure = Some(format!(
                    "the time limit passed with {received} of {expected} events received"
                ));
                break;
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                r.received += 1;
                r.bytes += text.len() as u64;
                r.first_event.get_or_insert_with(|| started.elapsed());
                // `draftoffset` comes second, right at the start.
                let offset = field(head(text.as_str(), 128), "\"draftoffset\":");
                if let (Some(prev), Some(o)) = (r.last_offset, offset)
                    && o != prev + 1
                {
                    r.disorder += 1;
                }
                r.first_offset = r.first_offset.or(offset);
                r.last_offset = offset.or(r.last_offset);
                if let (Some(every), Some(o)) = (ack_every, offset)
                    && (r.received % every == 0 || r.received == expected)
                {
                    if let Err(e) = socket.send(Message::text(format!("{{\"ack\":{o}}}"))).await {
                        r.failure = Some(format!("an acknowledgement failed: {e}"));
                        break;
                    }
                    r.acks += 1;
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                r.failure = Some(format!(
                    "the node closed the consumer after {received} events: {}",
                    close_reason(frame.as_ref())
                ));
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => {
                r.failure = Some(format!("the consumer failed after {received} events: {e}"));
                break;
            }
            Ok(None) => {
                r.failure = Some(format!(
                    "the node ended the consumer after {received} events"
                ));
                break;
            }
        }
    }
    progress.done();
    r
}
