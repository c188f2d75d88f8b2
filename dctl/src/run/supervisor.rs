//! [`supervise`]: the processes of `dctl run`. It starts the node (if asked) and waits until it
//! answers, starts each service in its own process group, passes their output on prefixed,
//! restarts failed services as [`Backoff`] says, and stops everything in reverse order on a
//! signal, a failure, or when every service is done.
//!
//! dctl's own notices (a restart, a SIGKILL, the signal it stops on) go to its stderr, one
//! line each; the children's stdout and stderr both go to its stdout.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep};

use crate::Error;
use crate::run::exit::describe;
use crate::run::group::Group;
use crate::run::locate::locate;
use crate::run::manifest::{Manifest, NODE_LABEL, Service};
use crate::run::node::{Probe, listening_url};
use crate::run::output::Output;
use crate::run::prefix::labels;
use crate::run::restart::{Backoff, Decision, MAX_RESTARTS};
use crate::run::signals::Signals;

mod stop;

/// How long the node `dctl run` starts has to answer `GET /healthz` (it replays its log
/// first).
const NODE_START: Duration = Duration::from_secs(60);
/// How long output still buffered in pipes is passed on after everything stopped.
const DRAIN: Duration = Duration::from_secs(1);

/// What `dctl run` runs.
#[derive(Debug)]
pub struct Plan {
    /// The services, and the node's settings.
    pub manifest: Manifest,
    /// The node: start one, or use one that answers.
    pub node: NodePlan,
    /// How long a service has from SIGTERM to exit before SIGKILL, unless its `grace_ms`
    /// says otherwise; also the node's.
    pub grace: Duration,
    /// Colour the prefixes (dctl's stdout is a terminal).
    pub colour: bool,
    /// The CA that signed an `https://` node's certificate: every service gets its path as
    /// `DRAFT_CA` (unless its own `env` sets one).
    pub ca: Option<PathBuf>,
    /// How the node is asked whether it answers (trusting that CA).
    pub probe: Probe,
}

/// Where the node comes from.
#[derive(Debug)]
pub enum NodePlan {
    /// Start `exe up --config MANIFEST` (`exe` is dctl itself) where dctl runs.
    Start {
        /// The dctl binary.
        exe: PathBuf,
    },
    /// One answers at `url`: leave it alone.
    Use {
        /// Its API.
        url: String,
    },
}

/// How a run ended. Every process it started has exited (or been killed) by then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every service exited 0.
    Finished,
    /// A signal stopped it, and everything stopped in order.
    Stopped,
    /// A service (or the node) failed, or could not start; the reason is one line.
    Failed(String),
    /// A second signal killed everything at once (SIGKILL).
    Killed,
}

/// Which process an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Node,
    Service(usize),
}

/// What the supervisor waits for, besides signals.
#[derive(Debug)]
enum Event {
    /// A process it started exited; `run` counts the service's starts, so an event about
    /// an earlier process of the service is told apart.
    Exited {
        who: Who,
        run: u64,
        status: std::io::Result<ExitStatus>,
    },
    /// A service's back-off has passed: start it again, if it is still the same `run` down.
    Restart { index: usize, run: u64 },
}

/// A service and its latest process.
struct Slot {
    service: Service,
    exe: PathBuf,
    prefix: Arc<[u8]>,
    /// The latest process's group, until it is seen empty.
    group: Option<Group>,
    /// How many processes it started.
    run: u64,
    started: Instant,
    /// The latest process has not exited yet.
    running: bool,
    /// It exited 0: it is not started again.
    done: bool,
    backoff: Backoff,
}

/// The node to start: dctl's binary, and the prefix of the node's lines.
type NodeStart<'a> = (&'a Path, Arc<[u8]>);

/// The state of one run.
struct Supervisor {
    slots: Vec<Slot>,
    /// The group of the node `dctl run` started, while it runs.
    node: Option<Group>,
    url: String,
    ca: Option<PathBuf>,
    probe: Probe,
    grace: Duration,
    output: Output,
    events: mpsc::Sender<Event>,
    inbox: mpsc::Receiver<Event>,
    signals: Signals,
}

/// Runs `plan` to its end.
///
/// # Errors
/// [`Error::Spawn`] if a service's command cannot be found, or [`Error::Signals`]; then
/// nothing was started.
pub async fn supervise(plan: Plan) -> Result<Outcome, Error> {
    let signals = Signals::new().map_err(Error::Signals)?;
    let exes = plan
        .manifest
        .services
        .iter()
        .map(|s| {
            locate(s).map_err(|reason| Error::Spawn {
                what: format!("service {}", s.name),
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (mut supervisor, node) = Supervisor::new(&plan, exes, signals);
    let ended = match node {
        Some((exe, prefix)) => supervisor.start_node(exe, &plan.manifest, prefix).await,
        None => None,
    };
    let outcome = match ended {
        Some(outcome) => outcome,
        None => supervisor.run().await,
    };
    supervisor.output.close(DRAIN).await;
    Ok(outcome)
}

impl Supervisor {
    /// The run's state before anything starts, and the node to start (dctl's binary and the
    /// node's prefix) if it starts one.
    fn new(plan: &Plan, exes: Vec<PathBuf>, signals: Signals) -> (Self, Option<NodeStart<'_>>) {
        let services = &plan.manifest.services;
        let (node_exe, url) = match &plan.node {
            // The URL of a node started here is known once it listens.
            NodePlan::Start { exe } => (Some(exe.as_path()), String::new()),
            NodePlan::Use { url } => (None, url.trim_end_matches('/').to_owned()),
        };
        let names = node_exe
            .map(|_| NODE_LABEL)
            .into_iter()
            .chain(services.iter().map(|s| s.name.as_str()))
            .collect::<Vec<_>>();
        let mut prefixes = labels(&names, plan.colour).into_iter().map(Arc::from);
        let node = node_exe.and_then(|exe| prefixes.next().map(|prefix| (exe, prefix)));
        let slots = services
            .iter()
            .zip(exes)
            .zip(prefixes)
            .map(|((service, exe), prefix)| Slot {
                service: service.clone(),
                exe,
                prefix,
                group: None,
                run: 0,
                started: Instant::now(),
                running: false,
                done: false,
                backoff: Backoff::default(),
            })
            .collect();
        // At most one process and one back-off per service, and the node, are outstanding
        // at once: sends never wait while the run reads its events.
        let (events, inbox) = mpsc::channel(2 * services.len() + 2);
        let supervisor = Self {
            slots,
            node: None,
            url,
            ca: plan.ca.clone(),
            probe: plan.probe.clone(),
            grace: plan.grace,
            output: Output::stdout(),
            events,
            inbox,
            signals,
        };
        (supervisor, node)
    }

    /// Starts `exe up` with the manifest as its config and waits until it answers. `None`
    /// once it does; else how the run ended (after stopping the node).
    async fn start_node(
        &mut self,
        exe: &Path,
        manifest: &Manifest,
        prefix: Arc<[u8]>,
    ) -> Option<Outcome> {
        let (reported, address) = oneshot::channel();
        let mut reported = Some(reported);
        let on_stdout = move |line: &[u8]| {
            if let Some(url) = listening_url(line)
                && let Some(tx) = reported.take()
            {
                let _ = tx.send(url);
            }
        };
        let mut command = tokio::process::Command::new(exe);
        command.arg("up").arg("--config").arg(&manifest.path);
        let group = match self.spawn(command, prefix, Who::Node, 0, on_stdout) {
            Ok(group) => group,
            Err(e) => return Some(Outcome::Failed(format!("cannot start the node: {e}"))),
        };
        let probe = self.probe.clone();
        let ready = async move {
            // Without the line the node exits, and its exit event ends the wait.
            let Ok(url) = address.await else {
                return std::future::pending().await;
            };
            probe.until_healthy(&url).await;
            url
        };
        let started = tokio::select! {
            url = ready => Ok(url),
            signal = self.signals.recv() => {
                eprintln!("dctl: {signal}: stopping the node");
                Err(Outcome::Stopped)
            }
            Some(event) = self.inbox.recv() => Err(Outcome::Failed(match event {
                Event::Exited { status, .. } => {
                    format!("the node exited before it answered ({})", describe(&status))
                }
                Event::Restart { .. } => "the node stopped".to_owned(),
            })),
            () = sleep(NODE_START) => Err(Outcome::Failed(format!(
                "the node did not answer GET /healthz within {} s",
                NODE_START.as_secs()
            ))),
        };
        self.node = Some(group);
        match started {
            Ok(url) => {
                self.url = url;
                None
            }
            Err(outcome) => Some(match self.stop_node().await {
                Ok(()) => outcome,
                Err(_) => Outcome::Killed,
            }),
        }
    }

    /// Starts every service, then supervises them until the run ends.
    async fn run(&mut self) -> Outcome {
        for index in 0..self.slots.len() {
            if let Err(reason) = self.start(index) {
                return self.shutdown(Outcome::Failed(reason)).await;
            }
        }
        loop {
            let event = tokio::select! {
                signal = self.signals.recv() => Err(signal),
                Some(event) = self.inbox.recv() => Ok(event),
            };
            let ended = match event {
                Ok(event) => self.handle(event),
                Err(signal) => {
                    eprintln!(
                        "dctl: {signal}: stopping (send it again to kill everything at once)"
                    );
                    Some(Outcome::Stopped)
                }
            };
            if let Some(outcome) = ended {
                return self.shutdown(outcome).await;
            }
        }
    }

    /// Acts on one event; `Some` when the run must end.
    fn handle(&mut self, event: Event) -> Option<Outcome> {
        match event {
            Event::Exited {
                who: Who::Node,
                status,
                ..
            } => Some(Outcome::Failed(format!(
                "the node exited ({})",
                describe(&status)
            ))),
            Event::Exited {
                who: Who::Service(index),
                run,
                status,
            } => self.exited(index, run, &status),
            Event::Restart { index, run } => {
                let slot = &self.slots[index];
                if slot.run != run || slot.running {
                    return None;
                }
                self.start(index).err().map(Outcome::Failed)
            }
        }
    }

    /// A service's process exited with `status`.
    fn exited(
        &mut self,
        index: usize,
        run: u64,
        status: &std::io::Result<ExitStatus>,
    ) -> Option<Outcome> {
        let slot = &mut self.slots[index];
        if slot.run != run {
            return None;
        }
        slot.running = false;
        if slot.group.is_some_and(|g| !g.is_alive()) {
            slot.group = None;
        }
        let success = status.as_ref().is_ok_and(ExitStatus::success);
        let name = &slot.service.name;
        match slot
            .backoff
            .after_exit(slot.service.restart, success, slot.started.elapsed())
        {
            Decision::Done => {
                slot.done = true;
                self.slots
                    .iter()
                    .all(|s| s.done)
                    .then_some(Outcome::Finished)
            }
            Decision::Fail => Some(Outcome::Failed(format!(
                "service {name} exited with {}",
                describe(status)
            ))),
            Decision::GiveUp => Some(Outcome::Failed(format!(
                "service {name} exited with {} after {MAX_RESTARTS} restarts in a row; giving up",
                describe(status)
            ))),
            Decision::Restart { delay, attempt } => {
                eprintln!(
                    "dctl: service {name} exited with {}; restart {attempt} of {MAX_RESTARTS} in {} ms",
                    describe(status),
                    delay.as_millis()
                );
                let events = self.events.clone();
                tokio::spawn(async move {
                    sleep(delay).await;
                    let _ = events.send(Event::Restart { index, run }).await;
                });
                None
            }
        }
    }

    /// Starts service `index`'s next process.
    fn start(&mut self, index: usize) -> Result<(), String> {
        // Whatever its last process left running in its group goes first.
        if let Some(group) = self.slots[index].group.take() {
            group.kill();
        }
        let slot = &self.slots[index];
        let service = &slot.service;
        let mut command = tokio::process::Command::new(&slot.exe);
        command.args(&service.args).env("DRAFT_URL", &self.url);
        if let Some(ca) = &self.ca {
            command.env("DRAFT_CA", ca);
        }
        command.envs(&service.env).current_dir(&service.cwd);
        let (prefix, run) = (Arc::clone(&slot.prefix), slot.run + 1);
        let group = self
            .spawn(command, prefix, Who::Service(index), run, |_: &[u8]| {})
            .map_err(|e| format!("cannot start service {}: {e}", service.name))?;
        let slot = &mut self.slots[index];
        slot.group = Some(group);
        slot.run = run;
        slot.started = Instant::now();
        slot.running = true;
        Ok(())
    }

    /// Spawns `command` as the leader of a new process group, its output prefixed (each
    /// stdout line also to `on_stdout`), its exit sent as an event.
    fn spawn(
        &self,
        mut command: tokio::process::Command,
        prefix: Arc<[u8]>,
        who: Who,
        run: u64,
        on_stdout: impl FnMut(&[u8]) + Send + 'static,
    ) -> std::io::Result<Group> {
        // Its own group: a signal to the group reaches its children, and Ctrl-C in a
        // terminal (SIGINT to dctl's group) reaches dctl alone, which stops them in order.
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let group = child
            .id()
            .and_then(Group::led_by)
            .ok_or_else(|| std::io::Error::other("the process has no id"))?;
        if let Some(stdout) = child.stdout.take() {
            self.output.forward(stdout, Arc::clone(&prefix), on_stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            self.output.forward(stderr, prefix, |_: &[u8]| {});
        }
        let events = self.events.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = events.send(Event::Exited { who, run, status }).await;
        });
        Ok(group)
    }
}
