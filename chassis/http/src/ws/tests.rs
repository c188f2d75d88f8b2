//! The socket loop, driven without a network.

use super::*;
use futures::channel::mpsc as fmpsc;

type Incoming = fmpsc::UnboundedSender<Result<Message, axum::Error>>;

struct Socket {
    sent: fmpsc::Receiver<Message>,
    client: Incoming,
    server: OutboxSender,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

fn start(options: SocketOptions) -> Socket {
    start_reading(options, 1024)
}

/// A socket whose client takes at most `room` messages more than it has read.
fn start_reading(options: SocketOptions, room: usize) -> Socket {
    let (sink, sent) = fmpsc::channel(room);
    let (client, stream) = fmpsc::unbounded();
    let (server, outbound) = outbox(16, OUTBOX_BYTES);
    let shutdown = Shutdown::new();
    let task = tokio::spawn(serve_socket(
        sink,
        stream,
        outbound,
        options,
        shutdown.clone(),
    ));
    Socket {
        sent,
        client,
        server,
        shutdown,
        task,
    }
}

fn close_code_of(message: &Message) -> Option<u16> {
    match message {
        Message::Close(Some(frame)) => Some(frame.code),
        _ => None,
    }
}

async fn next_non_ping(socket: &mut Socket) -> Message {
    loop {
        match socket.sent.next().await.expect("a message") {
            Message::Ping(_) => {}
            other => return other,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn sends_in_order_then_closes_as_told() {
    let mut s = start(SocketOptions::default());
    for text in ["a", "b"] {
        s.server
            .send(Outbound::Text(text.into()))
            .await
            .expect("open");
    }
    s.server
        .send(Outbound::Close(close_code::ERROR, "failed".into()))
        .await
        .expect("open");
    assert_eq!(next_non_ping(&mut s).await, Message::Text("a".into()));
    assert_eq!(next_non_ping(&mut s).await, Message::Text("b".into()));
    assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1011));
    s.task.await.expect("ends");
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_closed_after_the_idle_limit_and_a_talking_one_is_not() {
    let options = SocketOptions {
        ping_every: Duration::from_secs(1),
        idle_limit: Duration::from_secs(3),
        write_timeout: WRITE_TIMEOUT,
        client_data: ClientData::Ignore,
        credential: None,
    };
    let mut s = start(options);
    for _ in 0..6 {
        // Pongs keep it alive well past the idle limit.
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.client
            .unbounded_send(Ok(Message::Pong(bytes::Bytes::new())))
            .expect("open");
    }
    assert!(!s.task.is_finished());
    let closed = next_non_ping(&mut s).await;
    assert_eq!(close_code_of(&closed), Some(1008), "{closed:?}");
    s.task.await.expect("ends");
}

#[tokio::test(start_paused = true)]
async fn refused_client_data_closes_with_policy_and_shutdown_with_going_away() {
    let mut s = start(SocketOptions {
        client_data: ClientData::Refuse("receive only"),
        ..SocketOptions::default()
    });
    s.client
        .unbounded_send(Ok(Message::Text("hello".into())))
        .expect("open");
    assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1008));
    s.task.await.expect("ends");

    let mut s = start(SocketOptions::default());
    s.client
        .unbounded_send(Ok(Message::Text("ignored".into())))
        .expect("open");
    s.shutdown.trigger();
    assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1001));
    (&mut s.task).await.expect("ends");
    assert_eq!(s.shutdown.active(), 0, "the guard is released");
}

/// A socket whose client sends `messages` and then nothing, forwarding them into `to`; how many
/// messages the socket has read so far, and its task.
fn forwarding(
    messages: Vec<Result<Message, axum::Error>>,
    to: InboxSender,
    options: SocketOptions,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let read = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&read);
    let stream = futures::stream::iter(messages)
        .inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .chain(futures::stream::pending());
    let (sink, sent) = fmpsc::channel(16);
    let (server, outbound) = outbox(4, OUTBOX_BYTES);
    let options = SocketOptions {
        client_data: ClientData::Forward(to),
        ..options
    };
    let task = tokio::spawn(async move {
        // The client's receiving end and the server's sender live as long as the socket.
        let _held = (sent, server);
        serve_socket(sink, stream, outbound, options, Shutdown::new()).await;
    });
    (read, task)
}

#[tokio::test(start_paused = true)]
async fn forwarded_messages_arrive_in_order_and_reading_waits_for_room() {
    use std::sync::atomic::Ordering;
    let messages = vec![
        Ok(Message::Text("a".into())),
        Ok(Message::Binary(bytes::Bytes::from_static(b"b"))),
        Ok(Message::Text("c".into())),
    ];
    let (to, mut forwarded) = inbox(1, 1024);
    let options = SocketOptions {
        ping_every: Duration::from_secs(1),
        idle_limit: Duration::from_secs(3),
        write_timeout: WRITE_TIMEOUT,
        ..SocketOptions::default()
    };
    let (read, task) = forwarding(messages, to, options);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(read.load(Ordering::SeqCst), 1, "the channel is full");
    assert!(
        !task.is_finished(),
        "a client held back is not idle: {task:?}"
    );
    assert_eq!(forwarded.recv().await, Some(Inbound::Text("a".into())));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        read.load(Ordering::SeqCst),
        2,
        "one more, once there is room"
    );
    assert_eq!(
        forwarded.recv().await,
        Some(Inbound::Binary(bytes::Bytes::from_static(b"b")))
    );
    assert_eq!(forwarded.recv().await, Some(Inbound::Text("c".into())));
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn reading_waits_while_the_inbox_holds_its_byte_budget() {
    use std::sync::atomic::Ordering;
    let big = || Ok(Message::Text("x".repeat(600).into()));
    // Slots for 100 messages, but 1,000 bytes: two of 600 get in (the second while under it).
    let (to, mut forwarded) = inbox(100, 1000);
    let (read, task) = forwarding(vec![big(), big(), big()], to, SocketOptions::default());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        read.load(Ordering::SeqCst),
        2,
        "held back by bytes, not slots"
    );
    assert_eq!(forwarded.recv().await.map(|m| m.len()), Some(600));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(read.load(Ordering::SeqCst), 3, "read once under the budget");
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn messages_read_in_runs_arrive_whole_and_in_order() {
    use std::sync::atomic::Ordering;
    // More than two runs' worth, all readable at once, and a slot short of all of them.
    let n = 2 * super::READ_RUN + 7;
    let messages = (0..n)
        .map(|i| Ok(Message::Text(i.to_string().into())))
        .collect();
    let (to, mut forwarded) = inbox(n - 1, 1 << 20);
    let (read, task) = forwarding(messages, to, SocketOptions::default());
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        read.load(Ordering::SeqCst),
        n - 1,
        "as many as there are slots"
    );
    for i in 0..n {
        assert_eq!(
            forwarded.recv().await,
            Some(Inbound::Text(i.to_string().into()))
        );
    }
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_forwarding_socket_stops_reading_at_shutdown_and_closes_once_answered() {
    let (to, mut forwarded) = inbox(8, 1024);
    let mut s = start(SocketOptions {
        client_data: ClientData::Forward(to),
        ..SocketOptions::default()
    });
    s.client
        .unbounded_send(Ok(Message::Text("first".into())))
        .expect("open");
    assert_eq!(forwarded.recv().await, Some(Inbound::Text("first".into())));
    s.shutdown.trigger();
    assert_eq!(
        forwarded.recv().await,
        None,
        "no more input after the trigger"
    );
    let _ = s.client.unbounded_send(Ok(Message::Text("late".into())));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!s.task.is_finished(), "still open to answer");
    s.server
        .send(Outbound::Text("answer".into()))
        .await
        .expect("open");
    s.server
        .send(Outbound::Close(close_code::AWAY, "bye".into()))
        .await
        .expect("open");
    assert_eq!(next_non_ping(&mut s).await, Message::Text("answer".into()));
    assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1001));
    (&mut s.task).await.expect("ends");
    assert_eq!(s.shutdown.active(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_producer_that_goes_away_closes_with_1011_and_a_client_close_is_answered() {
    let mut s = start(SocketOptions::default());
    let (replacement, _) = outbox(1, 1);
    drop(std::mem::replace(&mut s.server, replacement));
    assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1011));

    let mut s = start(SocketOptions::default());
    s.client
        .unbounded_send(Ok(Message::Close(None)))
        .expect("open");
    assert_eq!(close_code_of(&next_non_ping(&mut s).await), Some(1000));
}

/// Starts a socket whose client reads nothing: it takes one message, then no more.
async fn stalled(options: SocketOptions) -> Socket {
    let s = start_reading(options, 0);
    for text in ["taken", "stuck", "queued"] {
        s.server
            .send(Outbound::Text(text.into()))
            .await
            .expect("open");
    }
    s
}

#[tokio::test(start_paused = true)]
async fn a_client_that_takes_no_write_is_closed_at_the_write_deadline() {
    let mut s = stalled(SocketOptions {
        write_timeout: Duration::from_secs(5),
        ..SocketOptions::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(4900)).await;
    assert!(!s.task.is_finished(), "within the deadline");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The client reads again: what it had taken, then the close (what was waiting is gone).
    assert_eq!(next_non_ping(&mut s).await, Message::Text("taken".into()));
    let closed = next_non_ping(&mut s).await;
    let Message::Close(Some(frame)) = &closed else {
        panic!("a close frame, not {closed:?}");
    };
    assert_eq!(frame.code, 1008);
    assert_eq!(
        frame.reason.as_str(),
        "not reading: no write accepted for 5 s"
    );
    tokio::time::timeout(Duration::from_secs(2), &mut s.task)
        .await
        .expect("ends")
        .expect("task");
}

#[tokio::test(start_paused = true)]
async fn a_stuck_write_does_not_hold_up_the_shutdown() {
    let mut s = stalled(SocketOptions::default()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    s.shutdown.trigger();
    tokio::time::timeout(Duration::from_millis(1500), &mut s.task)
        .await
        .expect("the shutdown ends it within the close grace, though nothing is read")
        .expect("task");
    assert_eq!(s.shutdown.active(), 0, "the guard is released");
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_that_keeps_taking_writes_is_not_closed() {
    let options = SocketOptions {
        write_timeout: Duration::from_secs(2),
        ..SocketOptions::default()
    };
    let mut s = start_reading(options, 0);
    let server = s.server.clone();
    let feeder = tokio::spawn(async move {
        for i in 0..20 {
            server
                .send(Outbound::Text(i.to_string().into()))
                .await
                .expect("open");
        }
    });
    for i in 0..20 {
        // One message a second: slower than sent, each within the deadline.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            next_non_ping(&mut s).await,
            Message::Text(i.to_string().into())
        );
    }
    feeder.await.expect("all sent");
    assert!(!s.task.is_finished());
}

#[tokio::test]
async fn a_socket_is_closed_with_policy_when_its_token_is_revoked() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let (changes, watching) = tokio::sync::watch::channel(0);
    let good = Arc::new(AtomicBool::new(true));
    let check = Arc::clone(&good);
    let validity = crate::auth::Validity::new(
        watching,
        Arc::new(move || check.load(Ordering::SeqCst)),
        None,
    );
    let options = SocketOptions {
        credential: Some(validity),
        ..SocketOptions::default()
    };
    let mut s = start(options);
    s.server
        .send(Outbound::Text("a".into()))
        .await
        .expect("open");
    assert_eq!(next_non_ping(&mut s).await, Message::Text("a".into()));
    good.store(false, Ordering::SeqCst);
    changes.send_replace(1);
    let closed = next_non_ping(&mut s).await;
    assert_eq!(close_code_of(&closed), Some(1008), "{closed:?}");
    assert!(
        format!("{closed:?}").contains("token revoked"),
        "{closed:?}"
    );
    s.task.await.expect("ends");
}
