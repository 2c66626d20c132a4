//! The dashboard on a real terminal: raw mode and the alternate screen while it runs, restored on
//! every way out (return, error, panic), with everything the run prints held until then.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::render::{View, render};
use super::{Control, Follower};

/// Whether the dashboard can be shown: stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Wait up to `tick` for input on stdin; whether the terminal hung up (closed window, dropped
/// ssh session) or stdin cannot be polled.
fn terminal_gone_within(tick: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(tick).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(_) => fds[0].revents().is_some_and(|r| {
            r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
        }),
        Err(nix::errno::Errno::EINTR) => false,
        Err(_) => true,
    }
}

/// Whether the terminal on stdin hung up, now.
pub fn terminal_gone() -> bool {
    terminal_gone_within(Duration::ZERO)
}

/// The screen is the dashboard's (raw mode, alternate screen).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Give the terminal back: leave the alternate screen, show the cursor, cooked mode, then write
/// what the run said meanwhile. Idempotent; safe from a panic hook.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout();
        let _ = execute!(out, terminal::LeaveAlternateScreen, cursor::Show);
        let _ = terminal::disable_raw_mode();
        let _ = out.flush();
    }
    crate::output::release();
}

/// Owns the screen while alive.
struct Screen {
    _hold: crate::output::Hold,
}

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        let hold = crate::output::hold();
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(Screen { _hold: hold })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// How the dashboard ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The run finished; its exit code from `run_finished`.
    Finished(crate::exit::ExitCode),
    /// The runner is done without a verdict (an error, a refusal): nothing to show.
    RunnerDone,
    /// The operator left (`watch`: q), or asked to exit at once (second Ctrl-C).
    Left,
}

/// The dashboard over one run directory.
pub struct Dashboard {
    follower: Follower,
    control: Option<Control>,
    color: bool,
}

impl Dashboard {
    pub fn new(dir: &Path, control: Option<Control>) -> Dashboard {
        Dashboard {
            follower: Follower::new(dir),
            control,
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// Follow and draw until the run is over. `runner_done` says the runner in this process
    /// returned (`run --live`); `watch` passes `None` and ends at `run_finished`. At the end the
    /// verdict stays on screen until a key is pressed (when there is a terminal to press it on).
    pub fn run(mut self, runner_done: Option<&AtomicBool>) -> std::io::Result<Ending> {
        let screen = Screen::enter()?;
        let backend = CrosstermBackend::new(std::io::stdout());
        let mut term = Terminal::new(backend)?;
        term.clear()?;
        let mut keys = Keys {
            tty: std::io::stdin().is_terminal(),
            ok: true,
            note: None,
            ctrl_c: 0,
            leave: false,
            pending: Default::default(),
        };
        let ending = loop {
            if !ACTIVE.load(Ordering::SeqCst) {
                // Someone gave the terminal back (a panic elsewhere, the hard exit): draw no more.
                break Ending::Left;
            }
            if let Err(e) = self.follower.poll() {
                tracing::warn!(error = %e, dir = %self.follower.dir().display(), "cannot read the run");
            }
            let runner = runner_done.map(|d| d.load(Ordering::SeqCst));
            let finished = self.follower.state.finished.map(|f| f.exit_code);
            if let Some(ending) = keys.ending(finished, runner) {
                break ending;
            }
            term.draw(|f| self.draw(f, &keys, finished.is_some(), runner))?;
            let Some(key) = keys.next_press() else {
                self.no_one_to_confirm(&keys);
                continue;
            };
            if finished.is_some() {
                keys.leave = true;
                continue;
            }
            match self.on_key(&mut keys, key) {
                Act::Stay => {}
                Act::Leave => break Ending::Left,
                Act::ExitNow => {
                    // The runner exits at once on the second request: give the terminal back
                    // first.
                    drop(term);
                    drop(screen);
                    if let Some(c) = &self.control {
                        c.abort();
                    }
                    return Ok(Ending::Left);
                }
            }
        };
        drop(term);
        drop(screen);
        Ok(ending)
    }

    /// One frame of the dashboard. `runner`: whether the runner of this process returned
    /// (`None` under `watch`).
    fn draw(&self, frame: &mut ratatui::Frame, keys: &Keys, finished: bool, runner: Option<bool>) {
        let state = &self.follower.state;
        let waiting = self.control.as_ref().and_then(Control::waiting);
        let help = match (finished, &self.control) {
            (true, _) if runner.is_none_or(|over| over) => "any key: leave",
            (true, _) => "writing the report…",
            (false, Some(_)) => "a: stop escalating · Ctrl-C twice: exit at once",
            (false, None) => "q: leave (the run goes on)",
        };
        let now = match state.finished {
            Some(f) => f.at.max(state.latest),
            None => unix_now(),
        };
        let elapsed = state.started_at.map_or(0.0, |s| now - s);
        let view = View {
            now,
            color: self.color,
            window_s: elapsed.clamp(60.0, 300.0),
            waiting: waiting.as_deref(),
            keys: help,
            note: keys.note,
        };
        render(frame, state, &view);
    }

    /// A step waiting for Enter when the keyboard is gone (the terminal closed) would wait
    /// for ever: stop escalating instead, as the abort key would.
    fn no_one_to_confirm(&self, keys: &Keys) {
        let Some(c) = self.control.as_ref().filter(|_| !keys.ok) else {
            return;
        };
        if c.waiting().is_some() && c.aborts() == 0 {
            tracing::warn!("no keyboard left to confirm the next step: stopping escalation");
            c.abandon();
        }
    }

    /// What a key pressed during the run does.
    fn on_key(&self, keys: &mut Keys, key: KeyEvent) -> Act {
        match (&self.control, key) {
            (None, k) if is_quit(k) => return Act::Leave,
            (None, _) => {}
            (Some(c), k) if is_ctrl_c(k) => {
                keys.ctrl_c += 1;
                if keys.ctrl_c >= 2 {
                    return Act::ExitNow;
                }
                if c.aborts() == 0 {
                    c.abort();
                }
                keys.note = Some("stopping escalation (Ctrl-C again: exit at once)");
            }
            (
                Some(c),
                KeyEvent {
                    code: KeyCode::Char('a' | 'q'),
                    ..
                },
            ) => {
                if c.aborts() == 0 {
                    c.abort();
                }
                keys.note = Some("stopping escalation: no more terminations");
            }
            (
                Some(c),
                KeyEvent {
                    code: KeyCode::Enter | KeyCode::Char(' ' | 'y' | 'g'),
                    ..
                },
            ) if c.waiting().is_some() => c.proceed(),
            _ => {}
        }
        Act::Stay
    }
}

/// The keyboard side of the dashboard.
struct Keys {
    /// stdin is a terminal.
    tty: bool,
    /// Keys can be read (false after the first read error: the dashboard only follows).
    ok: bool,
    /// A word for the bottom line, after a key.
    note: Option<&'static str>,
    ctrl_c: u32,
    /// A key was pressed after the run finished.
    leave: bool,
    /// Key presses read but not yet acted on.
    pending: std::collections::VecDeque<KeyEvent>,
}

/// What a key asks for.
enum Act {
    Stay,
    Leave,
    /// The second Ctrl-C: give the terminal back and exit at once.
    ExitNow,
}

impl Keys {
    /// Whether the dashboard is over, given the run's exit code once finished and, under
    /// `run --live`, whether the runner returned.
    fn ending(
        &self,
        finished: Option<crate::exit::ExitCode>,
        runner: Option<bool>,
    ) -> Option<Ending> {
        let no_key_to_wait_for = self.leave || !(self.tty && self.ok);
        match (finished, runner) {
            // watch: the run is over once run_finished is written.
            (Some(code), None) if no_key_to_wait_for => Some(Ending::Finished(code)),
            // run --live: over once the runner returned (the report is written by then).
            (Some(code), Some(true)) if no_key_to_wait_for => Some(Ending::Finished(code)),
            (None, Some(true)) => Some(Ending::RunnerDone),
            _ => None,
        }
    }

    /// The next key press within a tick; `None` after a tick without one.
    fn next_press(&mut self) -> Option<KeyEvent> {
        // No keyboard to read (no terminal for input): the dashboard still follows the run.
        let tick = Duration::from_millis(250);
        if !self.ok {
            std::thread::sleep(tick);
            return None;
        }
        if let Some(key) = self.pending.pop_front() {
            return Some(key);
        }
        // On a terminal the waiting is ours and crossterm only reads what is already there:
        // its reader spins for ever on a terminal that hangs up while it waits
        // (crossterm-rs/crossterm#793).
        let wait = match self.tty {
            true if terminal_gone_within(tick) => {
                tracing::debug!("the terminal hung up; the dashboard only follows");
                self.ok = false;
                return None;
            }
            true => Duration::ZERO,
            false => tick,
        };
        if let Err(e) = self.read_ready(wait) {
            tracing::debug!(error = %e, "no keyboard input; the dashboard only follows");
            self.ok = false;
        }
        self.pending.pop_front()
    }

    /// Every key press crossterm has within `wait` (two Ctrl-C typed together arrive in one
    /// read and are both kept).
    fn read_ready(&mut self, mut wait: Duration) -> std::io::Result<()> {
        while event::poll(wait)? {
            if let Event::Key(key) = event::read()?
                && key.kind == KeyEventKind::Press
            {
                self.pending.push_back(key);
            }
            wait = Duration::ZERO;
        }
        Ok(())
    }
}

fn is_ctrl_c(k: KeyEvent) -> bool {
    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)
}

fn is_quit(k: KeyEvent) -> bool {
    is_ctrl_c(k) || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
