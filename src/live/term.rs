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
    Finished(u8),
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
        let keys_tty = std::io::stdin().is_terminal();
        let mut keys_ok = true;
        let mut note: Option<&str> = None;
        let mut ctrl_c = 0;
        let mut leave = false;
        let ending = loop {
            if !ACTIVE.load(Ordering::SeqCst) {
                // Someone gave the terminal back (a panic elsewhere, the hard exit): draw no more.
                break Ending::Left;
            }
            if let Err(e) = self.follower.poll() {
                tracing::warn!(error = %e, dir = %self.follower.dir().display(), "cannot read the run");
            }
            let state = &self.follower.state;
            let runner_over = runner_done.is_some_and(|d| d.load(Ordering::SeqCst));
            let finished = state.finished.map(|f| f.exit_code);
            match (finished, runner_done) {
                // watch: the run is over once run_finished is written.
                (Some(code), None) if leave || !(keys_tty && keys_ok) => {
                    break Ending::Finished(code);
                }
                // run --live: over once the runner returned (the report is written by then).
                (Some(code), Some(_)) if runner_over && (leave || !(keys_tty && keys_ok)) => {
                    break Ending::Finished(code);
                }
                (None, Some(_)) if runner_over => break Ending::RunnerDone,
                _ => {}
            }
            let waiting = self.control.as_ref().and_then(Control::waiting);
            let keys = match (&finished, &self.control) {
                (Some(_), _) if runner_done.is_none() || runner_over => "any key: leave",
                (Some(_), _) => "writing the report…",
                (None, Some(_)) => "a: stop escalating · Ctrl-C twice: exit at once",
                (None, None) => "q: leave (the run goes on)",
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
                keys,
                note,
            };
            term.draw(|f| render(f, state, &view))?;
            // No keyboard to read (no terminal for input): the dashboard still follows the run.
            let tick = Duration::from_millis(250);
            if !keys_ok {
                std::thread::sleep(tick);
                continue;
            }
            let key = match event::poll(tick).and_then(|ready| ready.then(event::read).transpose())
            {
                Ok(Some(Event::Key(key))) => key,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "no keyboard input; the dashboard only follows");
                    keys_ok = false;
                    continue;
                }
            };
            if key.kind != KeyEventKind::Press {
                continue;
            }
            if finished.is_some() {
                leave = true;
                continue;
            }
            match (&self.control, key) {
                (None, k) if is_quit(k) => break Ending::Left,
                (None, _) => {}
                (Some(c), k) if is_ctrl_c(k) => {
                    ctrl_c += 1;
                    if ctrl_c >= 2 {
                        // The runner exits at once on the second request: give the terminal
                        // back first.
                        drop(term);
                        drop(screen);
                        c.abort();
                        return Ok(Ending::Left);
                    }
                    if c.aborts() == 0 {
                        c.abort();
                    }
                    note = Some("stopping escalation (Ctrl-C again: exit at once)");
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
                    note = Some("stopping escalation: no more terminations");
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
        };
        drop(term);
        drop(screen);
        Ok(ending)
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
