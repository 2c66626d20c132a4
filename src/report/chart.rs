//! Lag charts for `report.html`: inline SVG drawn by plotters, one chart per step with one line
//! per application, lag seconds over the seconds since the injection.
//!
//! A chart is drawn in two plotters passes over the same layout: the frame (axes, grid, each
//! application's baseline band, the injection, recovery and node-event markers), then each
//! application's line on its own. The line's polylines become one `<path>` per application in a
//! `<g class="series">`, so a reader (or a test) finds each application's line by name.

use std::fmt::Write;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::evidence::Marker;
use super::text::escape;

pub const WIDTH: u32 = 820;
pub const HEIGHT: u32 = 320;

/// Line colours of the applications, in order (colour-blind friendly, Okabe–Ito).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
];
/// Seconds on x, lag seconds on y; the same layout in every pass.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

const INJECTION: RGBColor = RGBColor(200, 30, 30);
const EVENT: RGBColor = RGBColor(110, 110, 110);
const GRID_LIGHT: RGBColor = RGBColor(235, 235, 235);
const GRID_BOLD: RGBColor = RGBColor(215, 215, 215);
/// How strongly a band is filled, and its upper line drawn, in its application's colour.
const BAND_FILL: f64 = 0.08;
const BAND_LINE: f64 = 0.7;
/// Node-event lines.
const EVENT_LINE: f64 = 0.6;
/// Width of an application's line, and of the injection's.
const LAG_WIDTH: u32 = 2;

/// The charts' look, for pages that draw them elsewhere (the live page draws in the browser):
/// the same colours, opacities and widths as these SVGs, as JSON.
pub fn theme() -> serde_json::Value {
    serde_json::json!({
        "palette": PALETTE.iter().map(|c| hex(*c)).collect::<Vec<_>>(),
        "injection": hex(INJECTION),
        "event": hex(EVENT),
        "grid_light": hex(GRID_LIGHT),
        "grid_bold": hex(GRID_BOLD),
        "band_fill": BAND_FILL,
        "band_line": BAND_LINE,
        "event_line": EVENT_LINE,
        "lag_width": LAG_WIDTH,
        "width": WIDTH,
        "height": HEIGHT,
    })
}

/// One application's line in a chart.
#[derive(Clone, Debug)]
pub struct Line {
    pub application: String,
    pub color: RGBColor,
    /// (seconds since the injection, lag seconds); `None` is a gap (no lag known).
    pub points: Vec<(f64, Option<f64>)>,
    pub band_upper_s: Option<f64>,
    pub recovery_s: Option<f64>,
}

/// What one step's chart shows.
#[derive(Clone, Debug)]
pub struct StepChart {
    /// For the SVG's title: `storm-lab step 2 (2 terminations)`.
    pub title: String,
    /// Seconds since the injection, from..to.
    pub x: (f64, f64),
    pub lines: Vec<Line>,
    pub markers: Vec<Marker>,
}

/// `#rrggbb` of a colour, for the HTML legend.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

impl StepChart {
    /// The top of the lag axis: above every sample and band in the window.
    fn y_max(&self) -> f64 {
        let top = self
            .lines
            .iter()
            .flat_map(|l| {
                l.points
                    .iter()
                    .filter(|(t, _)| *t >= self.x.0 && *t <= self.x.1)
                    .filter_map(|(_, v)| *v)
                    .chain(l.band_upper_s)
            })
            .fold(0.0, f64::max);
        (top * 1.25).max(1.0)
    }

    /// Contiguous runs of known lag inside the window.
    fn segments(&self, line: &Line) -> Vec<Vec<(f64, f64)>> {
        let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(t, v) in &line.points {
            if t < self.x.0 || t > self.x.1 {
                continue;
            }
            match v {
                Some(v) => out.last_mut().map_or((), |s| s.push((t, v))),
                None => out.push(Vec::new()),
            }
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// The chart as an `<svg>` element.
    pub fn svg(&self) -> Result<String, String> {
        let y_max = self.y_max();
        let mut frame = String::new();
        self.draw_frame(&mut frame, y_max)
            .map_err(|e| e.to_string())?;
        let mut series = String::from("<g class=\"series\">\n");
        for line in &self.lines {
            let mut layer = String::new();
            self.draw_line(&mut layer, line, y_max)
                .map_err(|e| e.to_string())?;
            let _ = writeln!(
                series,
                "<path data-application=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{LAG_WIDTH}\" \
                 stroke-linejoin=\"round\" d=\"{}\"/>",
                escape(&line.application),
                hex(line.color),
                path_data(&layer)
            );
        }
        series.push_str("</g>\n");
        let label = escape(&format!("lag over time, {}", self.title));
        // Plotters writes `<svg width=… xmlns=…>` then the drawing then `</svg>`: keep its
        // attributes and drawing, add ours, the title (first, for screen readers) and the lines.
        let Some((attrs, drawing)) = frame
            .strip_prefix("<svg ")
            .and_then(|f| f.trim_end().strip_suffix("</svg>"))
            .and_then(|f| f.split_once('>'))
        else {
            return Err("plotters wrote an SVG of an unexpected shape".into());
        };
        Ok(format!(
            "<svg class=\"lag-chart\" role=\"img\" aria-label=\"{label}\" {attrs}>\n\
             <title>{label}</title>{drawing}{series}</svg>\n"
        ))
    }

    fn chart<'a, DB: DrawingBackend + 'a>(
        &self,
        root: &'a DrawingArea<DB, plotters::coord::Shift>,
        y_max: f64,
    ) -> Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
        ChartBuilder::on(root)
            .margin(12)
            .margin_top(18)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(self.x.0..self.x.1, 0.0..y_max)
    }

    fn draw_frame(
        &self,
        out: &mut String,
        y_max: f64,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
        let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = self.chart(&root, y_max)?;
        let fmt_x = |v: &f64| format!("{v:.0}");
        let fmt_y = |v: &f64| {
            if y_max < 5.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        };
        chart
            .configure_mesh()
            .x_desc("seconds since the injection")
            .y_desc("lag (s)")
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y)
            .light_line_style(GRID_LIGHT)
            .bold_line_style(GRID_BOLD)
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .draw()?;
        let (x0, x1) = self.x;
        // Each application's baseline band: the area up to its upper bound, and the bound.
        for line in &self.lines {
            if let Some(upper) = line.band_upper_s {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, upper)],
                    line.color.mix(BAND_FILL).filled(),
                )))?;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x0, upper), (x1, upper)],
                    line.color.mix(BAND_LINE).stroke_width(1),
                )))?;
                chart.draw_series(std::iter::once(Text::new(
                    format!("band {upper:.1} s"),
                    (x0, upper),
                    ("sans-serif", 11).into_font().color(&line.color),
                )))?;
            }
        }
        let vertical =
            |t: f64, style: ShapeStyle| PathElement::new(vec![(t, 0.0), (t, y_max)], style);
        // Node events: thin grey lines, labels staggered in rows so they do not overlap.
        for (i, m) in self.markers.iter().enumerate() {
            if m.t < x0 || m.t > x1 {
                continue;
            }
            chart.draw_series(std::iter::once(vertical(
                m.t,
                EVENT.mix(EVENT_LINE).stroke_width(1),
            )))?;
            let row = (i % 4) as f64;
            chart.draw_series(std::iter::once(Text::new(
                m.label.clone(),
                (m.t, y_max * (0.97 - 0.07 * row)),
                ("sans-serif", 11).into_font().color(&EVENT),
            )))?;
        }
        // Recovery of each application.
        for (k, line) in self.lines.iter().enumerate() {
            if let Some(r) = line.recovery_s.filter(|r| *r >= x0 && *r <= x1) {
                chart.draw_series(std::iter::once(vertical(r, line.color.stroke_width(1))))?;
                chart.draw_series(std::iter::once(Text::new(
                    "recovered",
                    (r, y_max * (0.62 - 0.07 * (k % 4) as f64)),
                    ("sans-serif", 11).into_font().color(&line.color),
                )))?;
            }
        }
        // The injection.
        if x0 <= 0.0 && 0.0 <= x1 {
            chart.draw_series(std::iter::once(vertical(
                0.0,
                INJECTION.stroke_width(LAG_WIDTH),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                "injection",
                (0.0, y_max * 0.72),
                ("sans-serif", 12).into_font().color(&INJECTION),
            )))?;
        }
        root.present()?;
        Ok(())
    }

    fn draw_line(
        &self,
        out: &mut String,
        line: &Line,
        y_max: f64,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
        let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = self.chart(&root, y_max)?;
        for segment in self.segments(line) {
            chart.draw_series(LineSeries::new(segment, line.color.stroke_width(LAG_WIDTH)))?;
        }
        root.present()?;
        Ok(())
    }
}

/// The polylines of a one-line plotters layer as the `d` of one `<path>` (a gap starts a new
/// subpath).
fn path_data(layer: &str) -> String {
    let mut d = String::new();
    for poly in layer.split("<polyline").skip(1) {
        let Some(points) = poly
            .split_once("points=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(p, _)| p)
        else {
            continue;
        };
        for (i, p) in points.split_whitespace().enumerate() {
            if !d.is_empty() {
                d.push(' ');
            }
            d.push(if i == 0 { 'M' } else { 'L' });
            d.push_str(p);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> StepChart {
        StepChart {
            title: "storm-lab step 1 (1 termination)".into(),
            x: (-5.0, 20.0),
            lines: vec![
                Line {
                    application: "a<b".into(),
                    color: PALETTE[0],
                    points: vec![
                        (-4.0, Some(1.0)),
                        (0.0, Some(1.0)),
                        (2.0, None),
                        (4.0, Some(9.0)),
                        (8.0, Some(2.0)),
                    ],
                    band_upper_s: Some(3.0),
                    recovery_s: Some(8.0),
                },
                Line {
                    application: "b".into(),
                    color: PALETTE[1],
                    points: vec![(30.0, Some(1.0))],
                    band_upper_s: None,
                    recovery_s: None,
                },
            ],
            markers: vec![Marker {
                t: 1.0,
                label: "2 nodes killed".into(),
                source: "lab truth",
            }],
        }
    }

    #[test]
    fn one_path_per_application_with_a_gap_as_a_new_subpath() {
        let svg = chart().svg().unwrap();
        assert!(svg.starts_with("<svg class=\"lag-chart\""), "{svg}");
        assert_eq!(svg.matches("<path ").count(), 2, "{svg}");
        let first = svg.split("<path ").nth(1).unwrap();
        assert!(first.contains("data-application=\"a&lt;b\""));
        // Two runs of known lag: two subpaths.
        let d = first
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        // The other application has no sample in the window: an empty line, still there.
        assert!(svg.contains("data-application=\"b\" fill=\"none\" stroke=\"#e69f00\" stroke-width=\"2\" stroke-linejoin=\"round\" d=\"\""));
        for text in [
            "injection",
            "recovered",
            "2 nodes killed",
            "band 3.0 s",
            "<title>",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert_eq!(svg.matches("<svg").count(), 1);
    }
}
