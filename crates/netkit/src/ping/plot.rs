//! `--plot FILE.svg`: round-trip time over the run, one line per host,
//! lost probes marked with a cross in the host's colour along the top.
//! Plain SVG, written here.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use ping::{Event, ReplyStatus};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const LEGEND_ROW: f64 = 18.0;
const LEGEND_MAX: usize = 12;
/// Beyond this many points a host's line is drawn without dots.
const DOTS_UP_TO: usize = 300;
/// The legend's cross, which stands for every host's.
const LEGEND_CROSS: &str = "#333";
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#393b79",
];

/// Round trips and losses collected from a run's events.
#[derive(Debug)]
pub struct Plot {
    series: Vec<Series>,
}

#[derive(Debug, Default)]
struct Series {
    /// (send time, round trip in ms)
    points: Vec<(f64, f64)>,
    /// Send times of probes that got no reply.
    lost: Vec<f64>,
}

impl Plot {
    pub fn new(hosts: usize) -> Plot {
        Plot {
            series: (0..hosts).map(|_| Series::default()).collect(),
        }
    }

    pub fn record(&mut self, event: &Event) {
        match event {
            Event::Reply(reply) if reply.status != ReplyStatus::BadChecksum => {
                if let Some(rtt) = reply.rtt {
                    self.series[reply.host]
                        .points
                        .push((seconds(reply.sent), rtt.as_secs_f64() * 1e3));
                }
            }
            Event::Error(error) if error.message.is_failure() => {
                self.series[error.host].lost.push(seconds(error.sent));
            }
            Event::NoReply { host, sent, .. } => self.series[*host].lost.push(seconds(*sent)),
            _ => {}
        }
    }

    /// The chart, hosts labelled with `titles`.
    pub fn render(&self, titles: &[String]) -> String {
        let times = self.series.iter().flat_map(|series| {
            series
                .points
                .iter()
                .map(|point| point.0)
                .chain(series.lost.iter().copied())
        });
        let start = times.clone().fold(f64::INFINITY, f64::min);
        let start = if start.is_finite() { start } else { 0.0 };
        let x_max = times.fold(0.0f64, |max, t| max.max(t - start)).max(1e-3);
        let y_max = self
            .series
            .iter()
            .flat_map(|series| series.points.iter().map(|point| point.1))
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.1;
        let legend_rows = titles.len().min(LEGEND_MAX) + 1;
        let height = HEIGHT + LEGEND_ROW * legend_rows as f64;
        let (x_step, y_step) = (nice_step(x_max / 6.0), nice_step(y_max / 5.0));
        let x_max = (x_max / x_step).ceil() * x_step;
        let y_max = (y_max / y_step).ceil() * y_step;
        let plot_width = WIDTH - LEFT - RIGHT;
        let plot_height = HEIGHT - TOP - BOTTOM;
        let x = |t: f64| LEFT + (t - start) / x_max * plot_width;
        let y = |ms: f64| HEIGHT - BOTTOM - ms / y_max * plot_height;

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="24" text-anchor="middle" font-size="15">Round-trip time, {} host{}</text>"#,
            WIDTH / 2.0,
            titles.len(),
            if titles.len() == 1 { "" } else { "s" }
        );
        for tick in ticks(x_max, x_step) {
            let at = LEFT + tick / x_max * plot_width;
            let _ = writeln!(
                svg,
                r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{}" stroke="#e5e5e5"/><text x="{at:.1}" y="{}" text-anchor="middle">{}</text>"##,
                HEIGHT - BOTTOM,
                HEIGHT - BOTTOM + 16.0,
                label(tick, x_step)
            );
        }
        for tick in ticks(y_max, y_step) {
            let at = y(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{at:.1}" x2="{}" y2="{at:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                at + 4.0,
                label(tick, y_step)
            );
        }
        let _ = writeln!(
            svg,
            r##"<path d="M{LEFT} {TOP} V{bottom} H{right}" fill="none" stroke="#333"/>"##,
            bottom = HEIGHT - BOTTOM,
            right = WIDTH - RIGHT
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">seconds since the first probe</text>"#,
            LEFT + plot_width / 2.0,
            HEIGHT - 12.0
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">RTT (ms)</text>"#,
            TOP + plot_height / 2.0
        );
        for (index, series) in self.series.iter().enumerate() {
            let colour = PALETTE[index % PALETTE.len()];
            let mut points = series.points.clone();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            if points.len() > 1 {
                let path: Vec<String> = points
                    .iter()
                    .map(|&(t, ms)| format!("{:.1},{:.1}", x(t), y(ms)))
                    .collect();
                let _ = writeln!(
                    svg,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
                    path.join(" ")
                );
            }
            if points.len() <= DOTS_UP_TO {
                for &(t, ms) in &points {
                    let _ = writeln!(
                        svg,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"/>"#,
                        x(t),
                        y(ms)
                    );
                }
            }
            for &t in &series.lost {
                let (cx, cy) = (x(t), TOP + 6.0);
                let _ = writeln!(
                    svg,
                    r#"<path d="M{:.1} {:.1} l8 8 m0 -8 l-8 8" stroke="{colour}" stroke-width="2"/>"#,
                    cx - 4.0,
                    cy - 4.0
                );
            }
        }
        let mut row = HEIGHT + 4.0;
        for (index, title) in titles.iter().enumerate().take(LEGEND_MAX) {
            let colour = PALETTE[index % PALETTE.len()];
            let _ = writeln!(
                svg,
                r#"<line x1="{LEFT}" y1="{row}" x2="{}" y2="{row}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
                LEFT + 20.0,
                LEFT + 26.0,
                row + 4.0,
                escape(title)
            );
            row += LEGEND_ROW;
        }
        let more = titles.len().saturating_sub(LEGEND_MAX);
        let extra = if more > 0 {
            format!("; {more} more hosts not listed")
        } else {
            String::new()
        };
        let _ = writeln!(
            svg,
            r#"<path d="M{} {} l8 8 m0 -8 l-8 8" stroke="{LEGEND_CROSS}" stroke-width="2"/><text x="{}" y="{}">no reply (lost, timed out or an ICMP error){}</text>"#,
            LEFT + 6.0,
            row - 4.0,
            LEFT + 26.0,
            row + 4.0,
            escape(&extra)
        );
        svg.push_str("</svg>\n");
        svg
    }
}

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// 1, 2 or 5 times a power of ten, at least `rough`.
fn nice_step(rough: f64) -> f64 {
    let magnitude = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|&step| step >= rough)
        .unwrap_or(10.0 * magnitude)
}

fn ticks(max: f64, step: f64) -> impl Iterator<Item = f64> {
    let count = (max / step).round() as usize;
    (0..=count).map(move |index| index as f64 * step)
}

fn label(value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{value:.decimals$}")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(0.03), 0.05);
        assert_eq!(nice_step(420.0), 500.0);
        assert_eq!(label(0.05, 0.05), "0.05");
        assert_eq!(label(20.0, 5.0), "20");
    }

    #[test]
    fn empty_run_still_renders() {
        let svg = Plot::new(1).render(&["a<b".to_owned()]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("a&lt;b"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
