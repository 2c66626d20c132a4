//! Drawing a [`LiveState`]: per application a lag chart with its band, the ladder of each target
//! with the recovery clock, capacity, and the event timeline. Pure: the time and the colours are
//! given, so a recorded run draws the same frame every time (the snapshot tests rely on it).

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::state::{AppView, LiveState, StepState, TargetView, Tone};
use crate::analysis::{Verdict, fmt_secs};

/// How to draw: the moment shown, colours, and what the operator can do.
#[derive(Clone, Debug)]
pub struct View<'a> {
    /// Now, in seconds since the Unix epoch (the newest line's time for a recorded run).
    pub now: f64,
    /// Colours (off under NO_COLOR).
    pub color: bool,
    /// How far back the charts look, seconds.
    pub window_s: f64,
    /// The step waiting for the operator's go (`--step-confirm`).
    pub waiting: Option<&'a str>,
    /// The keys, for the bottom line.
    pub keys: &'a str,
    /// A word from the dashboard itself (abort requested, …).
    pub note: Option<&'a str>,
}

impl View<'_> {
    fn style(&self, fg: Color) -> Style {
        if self.color {
            Style::default().fg(fg)
        } else {
            Style::default()
        }
    }

    fn tone(&self, tone: Tone) -> Style {
        self.style(match tone {
            Tone::Info => Color::Gray,
            Tone::Inject => Color::Magenta,
            Tone::Good => Color::Green,
            Tone::Bad => Color::Red,
        })
    }

    fn state(&self, s: StepState) -> Style {
        let st = self.style(match s {
            StepState::Pending | StepState::Skipped => Color::DarkGray,
            StepState::Injecting => Color::Magenta,
            StepState::Observing => Color::Yellow,
            StepState::Passed => Color::Green,
            StepState::Failed => Color::Red,
            StepState::Inconclusive => Color::Yellow,
        });
        if matches!(s, StepState::Injecting | StepState::Observing) {
            st.add_modifier(Modifier::BOLD)
        } else {
            st
        }
    }

    fn verdict(&self, v: Verdict) -> Style {
        self.style(match v {
            Verdict::Pass => Color::Green,
            Verdict::Fail => Color::Red,
            Verdict::Inconclusive => Color::Yellow,
        })
    }
}

/// Draw the whole dashboard into the frame.
pub fn render(frame: &mut Frame, state: &LiveState, view: &View) {
    let area = frame.area();
    let [header, charts, bottom, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(50),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header_line(state, view)), header);
    render_charts(frame, charts, state, view);
    let side = if area.width >= 120 { 40 } else { 32 };
    let [ladder, events] =
        Layout::horizontal([Constraint::Length(side), Constraint::Min(20)]).areas(bottom);
    render_ladder(frame, ladder, state, view);
    render_events(frame, events, state, view);
    frame.render_widget(Paragraph::new(footer_line(state, view)), footer);
}

fn header_line<'a>(state: &LiveState, view: &View) -> Line<'a> {
    let plan = state
        .plan
        .clone()
        .unwrap_or_else(|| "waiting for the run to start".into());
    let phase = state.phase(view.waiting.is_some());
    let elapsed = state
        .started_at
        .map(|s| format!("  t+{}", clock(view.now - s)))
        .unwrap_or_default();
    Line::from(vec![
        Span::styled(
            " spotdrill live ",
            view.style(Color::Cyan).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("{plan}  ")),
        Span::styled(phase, view.style(Color::Yellow)),
        Span::raw(elapsed),
    ])
}

fn footer_line<'a>(state: &LiveState, view: &View) -> Line<'a> {
    let strong = Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED);
    if let Some(f) = &state.finished {
        return Line::from(vec![
            Span::styled(
                format!(
                    " VERDICT {} · exit code {} ",
                    f.verdict.as_str().to_uppercase(),
                    f.exit_code
                ),
                view.verdict(f.verdict).patch(strong),
            ),
            Span::raw(format!(" {}", view.keys)),
        ]);
    }
    if let Some(w) = view.waiting {
        return Line::from(vec![
            Span::styled(
                format!(" NEXT {w} "),
                view.style(Color::Yellow).patch(strong),
            ),
            Span::raw(" Enter: go · a: stop escalating"),
        ]);
    }
    let mut spans = Vec::new();
    if let Some(note) = view
        .note
        .map(str::to_owned)
        .or_else(|| state.stopped.clone())
    {
        spans.push(Span::styled(
            format!(" {note} "),
            view.style(Color::Red).patch(strong),
        ));
    }
    spans.push(Span::raw(format!(" {}", view.keys)));
    Line::from(spans)
}

/// `mm:ss` (or `h:mm:ss`) for a number of seconds.
fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

fn render_charts(frame: &mut Frame, area: Rect, state: &LiveState, view: &View) {
    let apps: Vec<(&String, &AppView)> = state.apps.iter().collect();
    if apps.is_empty() {
        frame.render_widget(
            Paragraph::new("no lag samples yet").block(Block::bordered().title(" lag ")),
            area,
        );
        return;
    }
    let per_row = if area.width >= 160 { 4 } else { 3 }.min(apps.len());
    let rows = apps.len().div_ceil(per_row);
    let row_areas = Layout::vertical(vec![Constraint::Fill(1); rows]).split(area);
    for (r, row) in apps.chunks(per_row).enumerate() {
        let cells = Layout::horizontal(vec![Constraint::Fill(1); per_row]).split(row_areas[r]);
        for (i, (name, app)) in row.iter().enumerate() {
            render_chart(frame, cells[i], state, name, app, view);
        }
    }
}

fn render_chart(
    frame: &mut Frame,
    area: Rect,
    state: &LiveState,
    name: &str,
    app: &AppView,
    view: &View,
) {
    let window = view.window_s.max(10.0);
    let from = view.now - window;
    let (segments, top) = lag_segments(app, from, view.now);
    let top = nice_top(app.band.map_or(top, |b| top.max(b.upper_s)) * 1.15);
    let band: Vec<(f64, f64)> = app
        .band
        .map(|b| vec![(-window, b.upper_s), (0.0, b.upper_s)])
        .unwrap_or_default();
    let injections = injection_ticks(state, app, from, view.now, top);
    let lag_style = match app.current().and_then(|p| p.lag_s).zip(app.band) {
        Some((l, b)) if l > b.upper_s => view.style(Color::Red),
        _ => view.style(Color::Cyan),
    };
    let mut datasets: Vec<Dataset> = injections
        .iter()
        .map(|tick| line(tick, view.style(Color::Magenta)))
        .collect();
    if !band.is_empty() {
        datasets.push(line(&band, view.style(Color::DarkGray)));
    }
    datasets.extend(
        segments
            .iter()
            .filter(|s| !s.is_empty())
            .map(|seg| line(seg, lag_style)),
    );
    let chart = Chart::new(datasets)
        .block(chart_block(name, app, view, lag_style))
        .legend_position(None)
        .x_axis(
            Axis::default()
                .bounds([-window, 0.0])
                .labels([
                    Line::from(format!("-{}", short_secs(window))),
                    Line::from("now"),
                ])
                .style(view.style(Color::DarkGray)),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels([Line::from("0"), Line::from(format!("{}s", short_num(top)))])
                .style(view.style(Color::DarkGray)),
        );
    frame.render_widget(chart, area);
}

/// Contiguous stretches of measured lag from `from` to `now` (x relative to `now`): a gap is
/// never drawn as a line. Also the highest lag among them (at least 1).
fn lag_segments(app: &AppView, from: f64, now: f64) -> (Vec<Vec<(f64, f64)>>, f64) {
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    let mut top: f64 = 1.0;
    for p in app
        .samples
        .iter()
        .filter(|p| p.at >= from && p.at <= now + 1.0)
    {
        match p.lag_s {
            Some(l) => {
                top = top.max(l);
                if let Some(seg) = segments.last_mut() {
                    seg.push((p.at - now, l));
                }
            }
            None => {
                if segments.last().is_some_and(|s| !s.is_empty()) {
                    segments.push(Vec::new());
                }
            }
        }
    }
    (segments, top)
}

/// A tick at the top edge for each injection of the app's target in the window: the lag line
/// stays readable without colour.
fn injection_ticks(
    state: &LiveState,
    app: &AppView,
    from: f64,
    now: f64,
    top: f64,
) -> Vec<Vec<(f64, f64)>> {
    state
        .targets
        .iter()
        .filter(|t| app.target.as_deref().is_none_or(|n| n == t.name))
        .flat_map(|t| t.steps.iter().filter_map(|s| s.injected_at))
        .filter(|&i| i >= from && i <= now)
        .map(|i| vec![(i - now, top * 0.85), (i - now, top)])
        .collect()
}

/// One line of a chart.
fn line(data: &[(f64, f64)], style: Style) -> Dataset<'_> {
    Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(style)
        .data(data)
}

/// The chart's frame: the app's name on top; the current lag, band and verdict so far below.
fn chart_block(name: &str, app: &AppView, view: &View, lag_style: Style) -> Block<'static> {
    let current = match app.current() {
        Some(p) => match p.lag_s {
            Some(l) => format!("{l:.1} s"),
            None => "no data".to_owned(),
        },
        None => "—".to_owned(),
    };
    let band_text = app
        .band
        .map(|b| format!(" band≤{:.1}", b.upper_s))
        .unwrap_or_default();
    let (verdict, vstyle) = match app.verdict_so_far() {
        Some(v) => (v.as_str().to_owned(), view.verdict(v)),
        None => ("…".to_owned(), Style::default()),
    };
    Block::bordered()
        .title(Line::from(Span::styled(
            format!(" {name} "),
            Style::default().add_modifier(Modifier::BOLD),
        )))
        .title_bottom(Line::from(vec![
            Span::styled(
                format!(" {current}"),
                lag_style.add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{band_text} ")),
            Span::styled(format!("{verdict} "), vstyle),
        ]))
}

/// A round upper bound for the y axis.
fn nice_top(x: f64) -> f64 {
    let steps = [
        2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
    ];
    steps
        .iter()
        .copied()
        .find(|&s| s >= x)
        .unwrap_or((x / 3600.0).ceil() * 3600.0)
}

fn short_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn short_secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else if s >= 60 {
        format!("{}m{:02}", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn render_ladder(frame: &mut Frame, area: Rect, state: &LiveState, view: &View) {
    let mut lines: Vec<Line> = Vec::new();
    for t in &state.targets {
        target_lines(&mut lines, state, view, t);
    }
    if state.targets.is_empty() {
        lines.push(Line::from("no run yet"));
    }
    let scroll = scroll_to_active(&lines, area.height.saturating_sub(2) as usize);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(" ladder "))
            .scroll((scroll, 0)),
        area,
    );
}

/// A target's ladder: its name, a line per step, and its capacity as last probed.
fn target_lines(lines: &mut Vec<Line<'static>>, state: &LiveState, view: &View, t: &TargetView) {
    lines.push(Line::from(vec![
        Span::styled(
            t.name.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(" {} · needs {}", t.kind, t.required_tolerance),
            view.style(Color::DarkGray),
        ),
    ]));
    if let Some(x) = t.tolerance_so_far() {
        lines.push(Line::from(Span::styled(
            format!("  tolerates {x}"),
            view.style(Color::DarkGray),
        )));
    }
    for (i, s) in t.steps.iter().enumerate() {
        let n = s.terminations;
        let extra = match s.state {
            StepState::Observing | StepState::Injecting => s
                .injected_at
                .or(s.started_at)
                .map(|i| {
                    let end = state.finished.map_or(view.now, |f| f.at.min(view.now));
                    format!(" {}", clock(end - i))
                })
                .unwrap_or_default(),
            StepState::Pending
                if view.waiting.is_some_and(|w| w.starts_with(&t.name))
                    && t.steps[..i].iter().all(|p| p.state != StepState::Pending) =>
            {
                " waits for Enter".to_owned()
            }
            _ => String::new(),
        };
        let cap = s
            .capacity_after_s
            .map(|c| format!(" cap {}", fmt_secs(c)))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::raw(format!(" {:>2} node{} ", n, if n == 1 { " " } else { "s" })),
            Span::styled(format!("{:<9}", s.state.label()), view.state(s.state)),
            Span::raw(format!("{extra}{cap}")),
        ]));
    }
    if let Some(c) = state.capacity.get(&t.name) {
        let (text, style) = match (&c.summary, &c.error) {
            (_, Some(e)) => (format!(" probe: {e}"), view.style(Color::Red)),
            (Some(s), None) => (format!(" {s}"), view.style(Color::Blue)),
            (None, None) => (" no capacity reported".to_owned(), Style::default()),
        };
        lines.push(Line::from(Span::styled(text, style)));
    }
}

/// Keep the active step in sight when the ladders are longer than the panel (`inner` lines).
fn scroll_to_active(lines: &[Line], inner: usize) -> u16 {
    let focus = lines
        .iter()
        .position(|l| {
            l.spans.iter().any(|s| {
                s.content.starts_with(StepState::Observing.label())
                    || s.content.starts_with(StepState::Injecting.label())
            })
        })
        .unwrap_or(0);
    if lines.len() > inner && focus >= inner {
        (focus + 1 - inner) as u16
    } else {
        0
    }
}

fn render_events(frame: &mut Frame, area: Rect, state: &LiveState, view: &View) {
    let inner = Block::default().borders(Borders::ALL).inner(area);
    let height = inner.height as usize;
    let width = inner.width as usize;
    let shown: Vec<Line> = state
        .events
        .iter()
        .filter(|e| e.at <= view.now + 1e-3)
        .map(|e| {
            let when = match state.injection_before(e.at) {
                Some(i) => format!("{:>7}", format!("+{:.1}s", e.at - i)),
                None => format!("t+{}", clock(state.started_at.map_or(0.0, |s| e.at - s))),
            };
            let text: String = e.text.chars().take(width.saturating_sub(8)).collect();
            Line::from(vec![
                Span::styled(when, view.style(Color::DarkGray)),
                Span::raw(" "),
                Span::styled(text, view.tone(e.tone)),
            ])
        })
        .collect();
    let skip = shown.len().saturating_sub(height);
    let lines: Vec<Line> = shown.into_iter().skip(skip).collect();
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(" events (time since injection) "))
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// A buffer as plain text, one line per row (for snapshots and tests).
pub fn to_text(buf: &Buffer) -> String {
    let mut out = String::new();
    let width = buf.area.width as usize;
    for row in buf.content.chunks(width.max(1)) {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::live::Follower;

    fn fixture() -> LiveState {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/runs/two-targets");
        let mut f = Follower::new(&dir);
        f.poll().unwrap();
        f.state
    }

    /// A view of `state` at its latest entry, with nothing waiting, no keys and no note.
    fn view_at(state: &LiveState, color: bool, window_s: f64) -> View<'static> {
        View {
            now: state.latest,
            color,
            window_s,
            waiting: None,
            keys: "",
            note: None,
        }
    }

    fn draw(state: &LiveState, view: &View, w: u16, h: u16) -> String {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| render(f, state, view)).unwrap();
        to_text(term.backend().buffer())
    }

    #[test]
    fn no_color_draws_no_colour() {
        let state = fixture();
        let view = View {
            keys: "q: leave",
            ..view_at(&state, false, 120.0)
        };
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        term.draw(|f| render(f, &state, &view)).unwrap();
        let buf = term.backend().buffer();
        assert!(
            buf.content
                .iter()
                .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
        );
        let coloured = View {
            color: true,
            ..view
        };
        term.draw(|f| render(f, &state, &coloured)).unwrap();
        assert!(
            term.backend()
                .buffer()
                .content
                .iter()
                .any(|c| c.fg != Color::Reset)
        );
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        let state = fixture();
        let view = View {
            waiting: Some("storm-lab step 1/3: 1 node"),
            ..view_at(&state, true, 300.0)
        };
        for (w, h) in [(1, 1), (10, 5), (20, 8), (40, 12)] {
            let _ = draw(&state, &view, w, h);
        }
        let empty = LiveState::default();
        assert!(draw(&empty, &view, 80, 24).contains("waiting for the run to start"));
    }
}
